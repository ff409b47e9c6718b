"""spec.loopBreaker: validated as written, compiled into the grant, and counted only where it applies."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tests.builders import grant, spend_policy


@pytest.mark.parametrize(
    ("per", "ms"), [("60s", 60_000), ("1m", 60_000), ("90m", 5_400_000), ("24h", 86_400_000)]
)
def test_the_window_is_compiled_to_milliseconds(per: str, ms: int) -> None:
    g = grant(spend_policy(loopBreaker={"calls": 20, "per": per}))
    assert g.loop_breaker is not None and (g.loop_breaker.calls, g.loop_breaker.window_ms) == (20, ms)


@pytest.mark.parametrize(
    ("breaker", "message"),
    [
        pytest.param({"calls": 0, "per": "1m"}, "greater than or equal to 1", id="no calls"),
        pytest.param({"calls": 5, "per": "0s"}, "should match pattern", id="empty window"),
        pytest.param({"calls": 5, "per": "1d"}, "should match pattern", id="days are not a unit"),
        pytest.param({"calls": 5, "per": "25h"}, "longer than 24h", id="longer than the cap's day"),
        pytest.param({"calls": 5}, "per", id="window missing"),
        pytest.param({"calls": 5, "per": "1m", "window": "1m"}, "Extra inputs", id="typo"),
        pytest.param({"calls": 5, "per": "1m", "endpoints": ["refunds"]}, "METHOD /path", id="bad endpoint"),
    ],
)
def test_bad_breakers_are_refused(breaker: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spend_policy(loopBreaker=breaker)


def test_endpoints_narrow_what_counts_and_count_free_calls_too() -> None:
    g = grant(spend_policy(loopBreaker={"calls": 2, "per": "1m", "endpoints": ["POST /v1/refunds"]}))
    assert g.loop_breaker is not None
    assert g.loop_breaker.counts("POST", "/v1/refunds", 100)
    assert g.loop_breaker.counts("POST", "/v1/refunds", 0)  # named: counted whatever it costs
    assert not g.loop_breaker.counts("POST", "/v1/charges", 100)


def test_without_endpoints_every_call_with_a_cost_counts_and_no_free_one() -> None:
    every = grant(spend_policy(loopBreaker={"calls": 2, "per": "1m"})).loop_breaker
    assert every is not None
    assert every.counts("POST", "/v1/charges", 1)
    assert not every.counts("POST", "/v1/payment_intents", 0)
    assert not every.counts("GET", "/v1/charges/ch_1", 0)


def test_a_policy_without_a_breaker_keeps_its_grant_version() -> None:
    # Adding the field must not change the version of grants that do not use it (no needless re-reads).
    assert grant().loop_breaker is None
    assert grant().version == grant(spend_policy()).version
    assert grant(spend_policy(loopBreaker={"calls": 2, "per": "1m"})).version != grant().version
