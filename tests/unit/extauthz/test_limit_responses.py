"""The loop breaker's 429 and the idempotency answers as each vendor's SDK sees them: status, error
shape, Retry-After, and no invitation to retry; replays marked in the metadata for the audit."""

from __future__ import annotations

import json

import pytest
import stripe
from google.protobuf import struct_pb2
from stripe._api_requestor import _APIRequestor
from tests.builders import NOW, VENDOR_KEY, call, grant, spend_policy

from tollgate.decide.engine import key_reused, loop_broken, replayed
from tollgate.decide.verdict import Allow, Deny
from tollgate.vendors import vendor
from tollgate.vendors.base import Vendor
from tollgate_extauthz.check import Decision
from tollgate_extauthz.response import denied, to_response

G = grant(spend_policy(loopBreaker={"calls": 20, "per": "1m"}))


def deny_429() -> Deny:
    v = loop_broken(G, 42_000, NOW)
    assert isinstance(v, Deny)
    return v


def rendered(v: Vendor, deny: Deny) -> tuple[int, dict[str, str], dict]:
    resp = denied(deny, "dec_1", v, struct_pb2.Struct())
    headers = {h.header.key: h.header.value for h in resp.denied_response.headers}
    return resp.denied_response.status.code, headers, json.loads(resp.denied_response.body)


@pytest.mark.parametrize("name", ["stripe", "twilio", "resend"])
def test_every_vendor_answers_the_loop_breaker_with_429_and_retry_after(name: str) -> None:
    v = vendor(name)
    assert v is not None
    status, headers, body = rendered(v, deny_429())
    assert status == 429
    assert headers["retry-after"] == "42"
    assert headers["x-tollgate-rule"] == "tollgate_loop_breaker"
    assert "Try again in 42 s" in json.dumps(body)


def test_stripe_python_raises_rate_limit_error_and_does_not_retry() -> None:
    v = vendor("stripe")
    assert v is not None
    status, headers, body = rendered(v, deny_429())
    assert headers["stripe-should-retry"] == "false"
    err = _APIRequestor().specific_v1_api_error(json.dumps(body), status, body, headers, body["error"])
    assert isinstance(err, stripe.RateLimitError)


def test_twilio_and_resend_use_their_own_429_shapes() -> None:
    tw, rs = vendor("twilio"), vendor("resend")
    assert tw is not None and rs is not None
    assert rendered(tw, deny_429())[2]["code"] == 20429
    assert rendered(rs, deny_429())[2]["name"] == "rate_limit_exceeded"


def test_a_reused_idempotency_key_is_stripes_idempotency_error() -> None:
    v = vendor("stripe")
    deny = key_reused(G, "ik_1")
    assert v is not None and isinstance(deny, Deny)
    status, headers, body = rendered(v, deny)
    assert (status, body["error"]["type"], body["error"]["code"]) == (
        400,
        "idempotency_error",
        "tollgate_idempotency_key_reused",
    )
    assert "retry-after" not in headers
    err = _APIRequestor().specific_v1_api_error(json.dumps(body), status, body, headers, body["error"])
    assert isinstance(err, stripe.IdempotencyError)


def test_a_replay_is_allowed_at_no_cost_and_marked_for_the_audit() -> None:
    v = vendor("stripe")
    assert v is not None
    d = Decision("dec_1", replayed(Allow(cost_micro_usd=5)), G, vendor_key=VENDOR_KEY)
    meta = to_response(d, call(idempotency_key="ik_1"), v).dynamic_metadata
    assert meta["replay"] is True and meta["cost_micro_usd"] == "0" and meta["idempotency_key"] == "ik_1"
    plain = Decision("dec_2", Allow(cost_micro_usd=5), G, vendor_key=VENDOR_KEY)
    assert "replay" not in to_response(plain, call(), v).dynamic_metadata
