"""The loop breaker with another vendor's SDK: resend-python through the real gateway gets Resend's own
429 (`rate_limit_exceeded`) with Retry-After, and the refused email never leaves the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import resend
from resend.exceptions import RateLimitError
from tests.e2e.test_resend import deploy, email, resend_api
from tests.support.recorder import RecordingUpstream
from tests.support.world import empty_world

from tollgate.local.gateway import LocalGateway


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    with RecordingUpstream(resend_api) as up:
        yield up


@pytest.fixture(scope="module")
def gateway_options(upstream: RecordingUpstream) -> dict[str, Any]:
    return {"upstreams": {"resend": upstream.url}, "audit": False}


def test_an_agent_sending_in_a_loop_is_stopped_with_resends_rate_limit_error(
    gateway: LocalGateway, upstream: RecordingUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_world(gateway)
    token = deploy(
        gateway,
        {"dailyCapUsd": "10", "pricePerEmailUsd": "0.01", "loopBreaker": {"calls": 2, "per": "1m"}},
    )
    monkeypatch.setattr(resend, "api_url", gateway.base_url("resend"))
    monkeypatch.setattr(resend, "api_key", token)
    email()
    email()
    with pytest.raises(RateLimitError) as raised:
        email()
    err = raised.value
    assert (err.code, err.error_type) == (429, "rate_limit_exceeded")
    assert err.headers is not None
    assert err.headers["x-tollgate-rule"] == "tollgate_loop_breaker"
    assert 1 <= int(err.headers["retry-after"]) <= 60
    assert f"Try again in {err.headers['retry-after']} s" in err.message
    assert len(upstream.requests) == 2  # the third email never left the gateway
