import base64
import json

import pytest
from tests.builders import wire

from tollgate.vendors.base import Denial
from tollgate.vendors.form import Ambiguous
from tollgate.vendors.stripe import STRIPE


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        ("Bearer tgk_abc", "tgk_abc"),
        ("bearer   tgk_abc ", "tgk_abc"),
        ("Basic " + base64.b64encode(b"tgk_abc:").decode(), "tgk_abc"),
        ("Basic " + base64.b64encode(b"tgk_abc:password").decode(), None),
        ("Basic !!!", None),
        ("Token tgk_abc", None),
        ("", None),
    ],
)
def test_vault_token_is_found_where_stripe_sdks_put_the_key(authorization: str, token: str | None) -> None:
    assert STRIPE.vault_token({"authorization": authorization}) == token


def test_json_bodies_are_refused_because_stripe_reads_form_encoding() -> None:
    with pytest.raises(Ambiguous, match="application/x-www-form-urlencoded"):
        STRIPE.parse_params(wire("application/json", b'{"amount": 1}'))


def test_denials_render_as_stripe_errors_that_say_not_to_retry() -> None:
    r = STRIPE.deny(Denial("tollgate_cap_exceeded", 402, "Daily spend cap reached"))
    assert r.status == 402
    assert r.headers["stripe-should-retry"] == "false"
    assert r.headers["content-type"] == "application/json"
    body = json.loads(r.body)
    assert body == {
        "error": {
            "type": "invalid_request_error",
            "code": "tollgate_cap_exceeded",
            "message": "Daily spend cap reached",
        }
    }


def test_unavailable_denials_invite_a_retry() -> None:
    r = STRIPE.deny(Denial("tollgate_unavailable", 503, "down", retry=True))
    assert r.headers["stripe-should-retry"] == "true"
    assert json.loads(r.body)["error"]["type"] == "api_error"


def test_upstream_gets_the_real_key_as_bearer() -> None:
    assert STRIPE.upstream_headers("sk_live_x", {}) == {"authorization": "Bearer sk_live_x"}


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("POST", "/v1/refunds", "refunds.create"),
        ("POST", "/v1/charges/ch_1/capture", "charges.capture"),
        ("GET", "/v1/customers/cus_1", "customers.retrieve"),
        ("POST", "/v1/payment_intents/pi_1/confirm", "payment_intents.confirm"),
        ("GET", "/v1/unknown/thing", "unknown.read"),
        ("POST", "/v1/unknown/thing", "unknown.write"),
    ],
)
def test_routes_match_by_method_and_template(method: str, path: str, name: str) -> None:
    assert STRIPE.match(method, path).name == name


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"stripe_account": "acct_1 acct_2"}, "Stripe-Account must be one account id"),
        ({"stripe_account": "acct_1,acct_2"}, "Stripe-Account must be one account id"),
        ({"stripe_account": "cus_1"}, "Stripe-Account must be one account id"),
        ({"stripe_context": "acct_1/wksp_2"}, "Stripe-Context must be account ids"),
        ({"stripe_account": "acct_1", "stripe_context": "acct_2"}, "not both"),
    ],
)
def test_account_headers_must_name_accounts_exactly(headers: dict[str, str], words: str) -> None:
    with pytest.raises(Ambiguous, match=words):
        STRIPE.parse_params(wire("application/x-www-form-urlencoded", b"amount=1", **headers))


def test_lookups_act_in_the_callers_connected_account_or_context() -> None:
    assert STRIPE.lookup_headers("sk", {"stripe-context": "acct_1"}) == {
        "authorization": "Bearer sk",
        "stripe-context": "acct_1",
    }
