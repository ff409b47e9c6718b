"""Class 3: a header the decision reads, sent twice, reaches the vendor twice while a joined view would
read one value: every such repeat is refused. Stripe-Context is scoped like Stripe-Account."""

from __future__ import annotations

import pytest
from tests.security.conftest import FORM, World, refused

REFUND = b"charge=ch_mine&amount=100"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("idempotency-key", "k1"), ("idempotency-key", "k2")], id="two idempotency keys"),
        pytest.param([("Idempotency-Key", "k1"), ("idempotency-key", "k1")], id="the same key twice"),
        pytest.param([("stripe-account", "acct_ours"), ("stripe-account", "acct_theirs")], id="two accounts"),
        pytest.param([("content-type", "text/plain")], id="two content types"),
        pytest.param([("content-encoding", "identity"), ("content-encoding", "gzip")], id="two encodings"),
        pytest.param([("x-agent-run-id", "a"), ("x-agent-run-id", "b")], id="two run ids"),
    ],
)
def test_a_repeated_decision_header_is_refused(world: World, headers: list[tuple[str, str]]) -> None:
    r = world.stripe("POST", "/v1/refunds", REFUND, FORM, *headers)
    refused(r, 400, "tollgate_request_invalid", world)
    # Envoy joins a repeat of the headers it keeps inline (Content-Type, Content-Encoding) into one
    # comma-separated value, which no media type or encoding grammar admits; others arrive one by one.
    message = r.json()["error"]["message"]
    assert (
        "more than once" in message
        or "'application/x-www-form-urlencoded," in message
        or "identity,gzip" in message
    )
    assert world.spent("stripe") == 0


@pytest.mark.parametrize("second", ["Bearer sk_live_guess", "Basic c2tfbGl2ZV9ndWVzczo="])
def test_two_authorization_headers_are_refused(world: World, second: str) -> None:
    # Envoy joins a repeated Authorization into one value: no vault key has a comma, so it is unknown.
    r = world.stripe("POST", "/v1/refunds", REFUND, FORM, ("authorization", second))
    assert (r.status, r.headers["x-tollgate-rule"]) in (
        (401, "tollgate_key_unknown"),
        (400, "tollgate_request_invalid"),
    )
    assert world.upstreams.all() == []
    assert world.spent("stripe") == 0


def test_a_repeat_of_a_header_no_decision_reads_passes(world: World) -> None:
    r = world.stripe("POST", "/v1/refunds", REFUND, FORM, ("accept", "application/json"), ("accept", "*/*"))
    assert r.status == 200, r.body


def test_a_retry_under_one_idempotency_key_is_still_counted_once(world: World) -> None:
    for _ in range(3):
        r = world.stripe("POST", "/v1/refunds", REFUND, FORM, ("idempotency-key", "retry-1"))
        assert r.status == 200, r.body
    assert world.spent("stripe") == 100 * 10_000


@pytest.mark.parametrize(
    ("context", "status", "rule"),
    [
        ("acct_theirs", 403, "tollgate_account_not_allowed"),
        ("acct_ours/acct_theirs", 403, "tollgate_account_not_allowed"),
        ("acct_ours/ctx", 400, "tollgate_request_invalid"),
        ("acct_ours, acct_theirs", 400, "tollgate_request_invalid"),
    ],
)
def test_stripe_context_outside_the_connected_accounts_is_refused(
    world: World, context: str, status: int, rule: str
) -> None:
    r = world.stripe("GET", "/v1/balance", b"", ("stripe-context", context))
    refused(r, status, rule, world)


def test_stripe_context_of_a_listed_account_passes_as_sent(world: World) -> None:
    r = world.stripe("GET", "/v1/balance", b"", ("stripe-context", "acct_ours"))
    assert r.status == 200, r.body
    [seen] = world.upstreams.stripe.requests
    assert seen.header("stripe-context") == "acct_ours"


def test_stripe_account_beside_stripe_context_is_refused(world: World) -> None:
    r = world.stripe(
        "GET", "/v1/balance", b"", ("stripe-account", "acct_ours"), ("stripe-context", "acct_ours")
    )
    refused(r, 400, "tollgate_request_invalid", world)


@pytest.mark.parametrize("name", ["X-HTTP-Method-Override", "x-http-method", "X-Method-Override"])
def test_a_method_override_header_is_refused(world: World, name: str) -> None:
    r = world.stripe("POST", "/v1/refunds", REFUND, FORM, (name, "DELETE"))
    refused(r, 400, "tollgate_request_invalid", world)
