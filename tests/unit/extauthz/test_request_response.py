"""Proto ↔ domain mapping, without a server."""

from __future__ import annotations

import json

import pytest
from envoy.service.auth.v3 import external_auth_pb2
from google.rpc import code_pb2
from tests.builders import VENDOR_KEY, grant

from tollgate.decide.rules import Rule
from tollgate.decide.verdict import Allow, Deny
from tollgate.vendors import VENDORS
from tollgate.vendors.base import Facts
from tollgate.vendors.stripe import STRIPE, StripeVendor
from tollgate.vendors.twilio import TWILIO
from tollgate_extauthz.check import Decision
from tollgate_extauthz.request import to_incoming
from tollgate_extauthz.response import metadata_for_failure, to_response

FORM_TYPE = "application/x-www-form-urlencoded"


def check_request(
    path: str, body: bytes = b"", method: str = "POST", **headers: str
) -> external_auth_pb2.CheckRequest:
    req = external_auth_pb2.CheckRequest()
    http = req.attributes.request.http
    http.method, http.path, http.raw_body, http.id = method, path, body, "42"
    for k, v in headers.items():
        http.headers[k.replace("_", "-")] = v
    req.attributes.context_extensions["vendor"] = "stripe"
    req.attributes.context_extensions["prefix"] = "/stripe"
    return req


def test_request_strips_the_vendor_prefix_and_reads_the_body_of_a_post() -> None:
    inc = to_incoming(
        check_request(
            "/stripe/v1/refunds",
            b"charge=ch_1&amount=5&expand[]=charge",
            authorization="Bearer tgk_x",
            content_type="application/x-www-form-urlencoded",
        )
    )
    assert inc.vendor is STRIPE
    assert inc.token == "tgk_x"
    assert inc.call.path == "/v1/refunds"
    assert inc.call.params == {"charge": "ch_1", "amount": "5", "expand[]": ["charge"]}


def raw_request(path: str, body: bytes, headers: list[tuple[str, str]]) -> external_auth_pb2.CheckRequest:
    """As Envoy sends it with encode_raw_headers: every header as received, repeats included."""
    req = check_request(path, body)
    for k, v in headers:
        req.attributes.request.http.header_map.headers.add(key=k, raw_value=v.encode())
    return req


FORM = ("content-type", "application/x-www-form-urlencoded")


@pytest.mark.parametrize(
    "header",
    [
        "idempotency-key",
        "stripe-account",
        "stripe-context",
        "authorization",
        "content-type",
        "content-encoding",
        "x-agent-run-id",
    ],
)
def test_a_repeated_header_the_decision_reads_is_a_parse_error(header: str) -> None:
    headers = [("authorization", "Bearer tgk_x"), FORM, (header, "a"), (header, "b")]
    inc = to_incoming(raw_request("/stripe/v1/refunds", b"charge=ch_1", headers))
    assert inc.call.parse_error is not None
    assert f"header {header} is sent more than once" in inc.call.parse_error


def test_a_vendors_own_decision_headers_may_not_repeat_once_it_is_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A throwaway vendor whose decisions read a header of its own: a repeat of it is refused on every
    # route, as Stripe's account headers are.
    class Team(StripeVendor):
        name = "team"
        decision_headers = frozenset({"team-id"})

    headers = [("authorization", "Bearer tgk_x"), FORM, ("team-id", "a"), ("team-id", "b")]
    assert to_incoming(raw_request("/stripe/v1/refunds", b"charge=ch_1", headers)).call.parse_error is None
    monkeypatch.setitem(VENDORS, "team", Team())
    error = to_incoming(raw_request("/stripe/v1/refunds", b"charge=ch_1", headers)).call.parse_error
    assert error is not None and "header team-id is sent more than once" in error


def test_raw_headers_are_read_one_by_one_and_other_repeats_pass() -> None:
    headers = [
        ("authorization", "Bearer tgk_x"),
        FORM,
        ("idempotency-key", "k1"),
        ("accept", "a"),
        ("accept", "b"),
    ]
    inc = to_incoming(raw_request("/stripe/v1/refunds", b"charge=ch_1", headers))
    assert inc.call.parse_error is None
    assert inc.token == "tgk_x"
    assert inc.call.headers["idempotency-key"] == "k1"
    assert inc.call.headers["accept"] == "a,b"


@pytest.mark.parametrize(
    ("path", "body", "method"),
    [
        pytest.param("/stripe/v1/refunds?amount=100", b"charge=ch_1", "POST", id="post with a query"),
        pytest.param("/stripe/v1/charges", b"customer=cus_1", "GET", id="get with a body"),
        pytest.param("/stripe/v1/%72efunds", b"charge=ch_1", "POST", id="an escaped path"),
    ],
)
def test_requests_the_vendor_reads_otherwise_become_parse_errors(path: str, body: bytes, method: str) -> None:
    inc = to_incoming(check_request(path, body, method, content_type="application/x-www-form-urlencoded"))
    assert inc.call.parse_error is not None
    assert inc.call.params == {}


def test_credentials_never_reach_the_call() -> None:
    inc = to_incoming(
        check_request(
            "/stripe/v1/refunds", authorization="Bearer tgk_x", cookie="s=1", proxy_authorization="Basic x"
        )
    )
    assert not {"authorization", "cookie", "proxy-authorization"} & set(inc.call.headers)
    assert "tgk_x" not in repr(inc.call)


def test_an_ambiguous_body_becomes_a_parse_error_not_an_exception() -> None:
    inc = to_incoming(
        check_request(
            "/stripe/v1/refunds",
            b"amount=1&amount=2",
            authorization="Bearer t",
            content_type="application/x-www-form-urlencoded",
        )
    )
    assert inc.call.parse_error is not None and "more than once" in inc.call.parse_error


def test_an_unknown_vendor_route_has_no_vendor() -> None:
    req = check_request("/x/v1/refunds")
    req.attributes.context_extensions["vendor"] = "paypal"
    assert to_incoming(req).vendor is None


def test_allow_swaps_in_the_real_key_and_records_metadata() -> None:
    inc = to_incoming(
        check_request(
            "/stripe/v1/refunds",
            b"charge=ch_1",
            authorization="Bearer tgk_x",
            x_agent_run_id="run-7",
            idempotency_key="idem-1",
        )
    )
    d = Decision(
        "dec_1",
        Allow(cost_micro_usd=5_000_000),
        grant(),
        STRIPE.match("POST", "/v1/refunds"),
        reservation_id="r1",
        day="20261125",
        spent_micro_usd=5_000_000,
        vendor_key=VENDOR_KEY,
    )
    resp = to_response(d, inc.call, inc.vendor)
    assert resp.status.code == code_pb2.OK
    headers = {h.header.key: h.header.value for h in resp.ok_response.headers}
    assert headers == {"authorization": f"Bearer {VENDOR_KEY}"}
    meta = dict(resp.dynamic_metadata)
    assert meta["decision"] == "allow" and meta["rule"] == Rule.ALLOWED.value
    assert meta["cost_micro_usd"] == "5000000"
    assert meta["vault_key_id"] == "agents/support-bot"
    assert meta["agent_run_id"] == "run-7" and meta["idempotency_key"] == "idem-1"
    assert meta["reservation_id"] == "r1"
    assert VENDOR_KEY not in str(resp.dynamic_metadata) and "tgk_x" not in str(resp.dynamic_metadata)


def test_deny_answers_in_stripe_format_with_the_rule_header() -> None:
    inc = to_incoming(check_request("/stripe/v1/payouts", authorization="Bearer tgk_x"))
    d = Decision("dec_2", Deny(Rule.ENDPOINT_NOT_ALLOWED, "not allowed"), grant())
    resp = to_response(d, inc.call, inc.vendor)
    assert resp.status.code == code_pb2.PERMISSION_DENIED
    assert resp.denied_response.status.code == 403
    headers = {h.header.key: h.header.value for h in resp.denied_response.headers}
    assert headers["x-tollgate-rule"] == "tollgate_endpoint_not_allowed"
    assert headers["stripe-should-retry"] == "false"
    assert json.loads(resp.denied_response.body)["error"]["code"] == "tollgate_endpoint_not_allowed"
    assert dict(resp.dynamic_metadata)["decision"] == "deny"


@pytest.mark.parametrize(
    ("facts", "column"),
    [
        pytest.param(
            Facts(cost=None, customers=frozenset({"cus_2", "cus_1"})), "cus_1,cus_2", id="customers"
        ),
        pytest.param(Facts(cost=None, recipients=frozenset({"+14155550100"})), "+14155550100", id="SMS"),
        pytest.param(
            Facts(cost=None, recipients=frozenset(f"u{i:02}@example.com" for i in range(12))),
            ",".join(f"u{i:02}@example.com" for i in range(10)) + " (+2 more)",
            id="a large batch keeps the first ten and a count",
        ),
    ],
)
def test_the_audit_customer_column_names_customers_or_recipients(facts: Facts, column: str) -> None:
    inc = to_incoming(check_request("/stripe/v1/refunds", authorization="Bearer tgk_x"))
    d = Decision("dec_3", Deny(Rule.RECIPIENT_OUT_OF_SCOPE, "no"), grant(), facts=facts)
    assert dict(to_response(d, inc.call, inc.vendor).dynamic_metadata)["customer"] == column


def test_the_audit_gets_the_parameters_redacted_and_never_a_credential() -> None:
    body = (
        b"amount=500&currency=usd&card[number]=4242424242424242&card[cvc]=123"
        b"&metadata[note]=tgk_x&metadata[mine]=" + VENDOR_KEY.encode() + b"&metadata[order]=7"
    )
    inc = to_incoming(
        check_request("/stripe/v1/charges", body, authorization="Bearer tgk_x", content_type=FORM_TYPE)
    )
    d = Decision("dec_1", Allow(cost_micro_usd=5_000_000), grant(), vendor_key=VENDOR_KEY)
    meta = dict(to_response(d, inc.call, inc.vendor, token=inc.token).dynamic_metadata)
    assert json.loads(meta["params"]) == {
        "amount": "500",
        "currency": "usd",
        "card[number]": "[redacted]",
        "card[cvc]": "[redacted]",
        "metadata[mine]": "[redacted]",
        "metadata[note]": "[redacted]",
        "metadata[order]": "7",
    }
    assert VENDOR_KEY not in str(meta) and "tgk_x" not in str(meta) and "4242" not in str(meta)


def test_settings_add_names_to_the_vendors_redaction_list() -> None:
    inc = to_incoming(
        check_request("/stripe/v1/refunds", b"charge=ch_1&metadata[email]=a@b.c", content_type=FORM_TYPE)
    )
    d = Decision("dec_1", Allow(cost_micro_usd=0), grant(), vendor_key=VENDOR_KEY)
    meta = dict(to_response(d, inc.call, inc.vendor, redact=frozenset({"email"})).dynamic_metadata)
    assert json.loads(meta["params"]) == {"charge": "ch_1", "metadata[email]": "[redacted]"}


def test_the_audit_connected_account_column_is_the_vendors_own_account_header() -> None:
    stripe = to_incoming(
        check_request("/stripe/v1/refunds", authorization="Bearer tgk_x", stripe_account="acct_1")
    )
    d = Decision("dec_1", Deny(Rule.ENDPOINT_NOT_ALLOWED, "no"), grant())
    assert dict(to_response(d, stripe.call, stripe.vendor).dynamic_metadata)["connected_account"] == "acct_1"
    failed = metadata_for_failure("dec_1", stripe.call, Rule.UNAVAILABLE)
    assert dict(failed)["connected_account"] == "acct_1"
    # A vendor with no account header has no connected account, whatever headers the call carries.
    req = check_request("/twilio/2010-04-01/Accounts/AC1/Messages.json", stripe_account="acct_1")
    req.attributes.context_extensions["vendor"] = "twilio"
    req.attributes.context_extensions["prefix"] = "/twilio"
    twilio = to_incoming(req)
    assert twilio.vendor is TWILIO and TWILIO.account_header == ""
    assert "connected_account" not in dict(to_response(d, twilio.call, twilio.vendor).dynamic_metadata)
    assert "connected_account" not in dict(metadata_for_failure("dec_1", twilio.call, Rule.UNAVAILABLE))
