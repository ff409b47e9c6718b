"""Class 8: what Envoy answers by itself is safe and worded in the vendor's error JSON; a body shorter
than its Content-Length is answered in bounded time; client-sent x-envoy-* headers never reach a vendor."""

from __future__ import annotations

import time

import pytest
from tests.security.conftest import FORM, MAX_BODY, REQUEST_TIMEOUT_S, TWILIO_SID, World


@pytest.mark.parametrize(
    ("method", "target", "status", "code"),
    [
        ("POST", "/stripe/v1%2Frefunds", 400, "tollgate_path_rejected"),
        ("POST", "/stripe/v1%5Crefunds", 400, "tollgate_path_rejected"),
        ("GET", "/nowhere/v1/balance", 404, "tollgate_unknown_route"),
    ],
)
def test_envoys_refusals_are_stripe_errors(
    world: World, method: str, target: str, status: int, code: str
) -> None:
    r = world.send(method, target, b"", [("authorization", f"Bearer {world.tokens['stripe']}")])
    assert r.status == status
    assert r.json()["error"]["code"] == code
    assert r.headers["content-type"].startswith("application/json")
    assert world.upstreams.all() == []


def test_an_oversized_body_is_refused_in_each_vendors_shape(world: World) -> None:
    big = b"a=" + b"x" * MAX_BODY
    stripe = world.stripe("POST", "/v1/refunds", big, FORM)
    assert (stripe.status, stripe.json()["error"]["code"]) == (413, "tollgate_body_too_large")
    assert stripe.headers["stripe-should-retry"] == "false"
    twilio = world.twilio(big, FORM)
    assert (twilio.status, twilio.json()["details"]["tollgate_rule"]) == (413, "tollgate_body_too_large")
    resend = world.resend(big, ("content-type", "application/json"))
    assert (resend.status, resend.json()["statusCode"]) == (413, 413)
    assert world.upstreams.all() == []


def test_a_header_name_with_an_underscore_never_reaches_ext_authz_or_the_vendor(world: World) -> None:
    r = world.stripe(
        "POST", "/v1/refunds", b"charge=ch_mine&amount=100", FORM, ("stripe_account", "acct_theirs")
    )
    assert (r.status, r.json()["error"]["code"]) == (400, "tollgate_path_rejected")
    assert world.upstreams.all() == [] and world.spent("stripe") == 0


def test_a_short_body_is_answered_408_in_bounded_time_and_not_sent(world: World) -> None:
    started = time.monotonic()
    r = world.stripe("POST", "/v1/refunds", b"charge=ch_mine", FORM, content_length=4000)
    assert (r.status, r.json()["error"]["code"]) == (408, "tollgate_request_timeout")
    assert time.monotonic() - started < REQUEST_TIMEOUT_S + 5
    assert world.upstreams.all() == []


def test_client_sent_envoy_headers_never_reach_the_vendor(world: World) -> None:
    sneaky = [
        ("x-envoy-original-path", "/v1/payouts"),
        ("x-envoy-upstream-rq-timeout-ms", "1"),
        ("x-envoy-retry-on", "5xx"),
    ]
    r = world.stripe("POST", "/v1/refunds", b"charge=ch_mine&amount=100", FORM, *sneaky)
    assert r.status == 200, r.body
    for req in world.upstreams.stripe.requests:
        assert not [k for k, _ in req.raw_headers if k.lower().startswith("x-envoy-")], req.raw_headers
    sms = world.twilio(b"To=%2B14155550100&Body=hi", FORM, *sneaky)
    assert sms.status == 201
    assert not [
        k for k, _ in world.upstreams.twilio.requests[-1].raw_headers if k.lower().startswith("x-envoy")
    ]


def test_ext_authz_down_is_a_503_every_sdk_may_retry_and_nothing_is_sent(world: World) -> None:
    world.gateway.stop_extauthz()
    try:
        stripe = world.stripe("POST", "/v1/refunds", b"charge=ch_mine&amount=100", FORM)
        assert (stripe.status, stripe.json()["error"]["type"]) == (503, "api_error")
        assert stripe.headers["stripe-should-retry"] == "true"
        twilio = world.twilio(b"To=%2B14155550100&Body=hi", FORM)
        assert (twilio.status, twilio.json()["code"]) == (503, 20503)
        resend = world.resend(b"{}", ("content-type", "application/json"))
        assert resend.status == 503 and resend.json()["name"] == "application_error"
        assert world.upstreams.all() == []
    finally:
        world.gateway.start_extauthz()
    deadline = time.monotonic() + 15
    while world.stripe("GET", "/v1/balance").status != 200:
        assert time.monotonic() < deadline, "ext_authz did not come back"
        time.sleep(0.2)


def test_twilio_paths_must_name_an_account_sid(world: World) -> None:
    r = world.twilio(
        b"To=%2B14155550100&Body=hi", FORM, path=f"/twilio/2010-04-01/Accounts/{TWILIO_SID}%3B/Messages.json"
    )
    assert r.status == 400
    assert world.upstreams.all() == []
