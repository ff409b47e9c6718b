import base64
import json

import pytest
from tests.builders import wire

from tollgate.vendors.base import Denial
from tollgate.vendors.form import Ambiguous
from tollgate.vendors.stripe import STRIPE
from tollgate.vendors.wire import Wire


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


def test_an_approvals_id_is_a_field_of_the_error_object() -> None:
    r = STRIPE.deny(
        Denial("tollgate_approval_required", 403, "Approval apr-1 is pending", approval_id="apr-1")
    )
    assert json.loads(r.body)["error"]["approval_id"] == "apr-1"


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


def test_stripe_is_served_at_its_api_host_and_its_file_upload_host() -> None:
    assert dict(STRIPE.default_urls) == {"api": "https://api.stripe.com", "files": "https://files.stripe.com"}


UPLOAD_TYPE = "multipart/form-data; boundary=xyz"
UPLOAD = (
    b'--xyz\r\nContent-Disposition: form-data; name="purpose"\r\n\r\ndispute_evidence\r\n'
    b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="e.pdf"\r\n\r\n%PDF\r\n--xyz--\r\n'
)


def _on(api: str, method: str, path: str, content_type: str | None, body: bytes = b"") -> Wire:
    w = wire(content_type, body, method=method)
    return Wire(w.method, path, w.query, w.headers, w.body, api)


def test_a_file_upload_on_the_files_host_gives_its_fields_as_params() -> None:
    assert STRIPE.parse_params(_on("files", "POST", "/v1/files", UPLOAD_TYPE, UPLOAD)) == {
        "purpose": "dispute_evidence"
    }


def test_a_file_upload_on_the_api_host_is_refused_and_pointed_at_the_files_prefix() -> None:
    with pytest.raises(Ambiguous, match="/stripe-files"):
        STRIPE.parse_params(_on("api", "POST", "/v1/files", UPLOAD_TYPE, UPLOAD))


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/refunds"), ("GET", "/v1/charges"), ("POST", "/v1/no_such_things")]
)
def test_the_files_host_serves_nothing_but_its_own_routes(method: str, path: str) -> None:
    with pytest.raises(Ambiguous, match="only what Stripe serves at its files host"):
        STRIPE.parse_params(_on("files", method, path, "application/x-www-form-urlencoded", b"a=1"))


def test_multipart_is_read_only_on_the_file_upload_route() -> None:
    with pytest.raises(Ambiguous, match="application/x-www-form-urlencoded"):
        STRIPE.parse_params(_on("api", "POST", "/v1/refunds", UPLOAD_TYPE, UPLOAD))


def test_a_v2_json_body_is_refused_with_the_reason() -> None:
    with pytest.raises(Ambiguous, match="does not read /v2 JSON bodies"):
        STRIPE.parse_params(_on("api", "POST", "/v2/core/accounts", "application/json", b"{}"))
