"""Resend at the seam: where the vault token is, how bodies are read, what goes upstream, and denials
resend-python turns into its usual exceptions."""

import json

import pytest
from resend.exceptions import (
    InvalidApiKeyError,
    RateLimitError,
    ResendError,
    ValidationError,
    raise_for_code_and_type,
)
from tests.builders import wire

from tollgate.vendors.base import Denial, Idempotent
from tollgate.vendors.form import Ambiguous
from tollgate.vendors.resend import RESEND


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        pytest.param("Bearer tgk_abc", "tgk_abc", id="the bearer token is the vault token"),
        pytest.param("bearer  tgk_abc ", "tgk_abc", id="the scheme is case-insensitive"),
        pytest.param("Bearer ", None, id="an empty bearer is no token"),
        pytest.param("Basic dGdrOmFiYw==", None, id="Resend takes no Basic auth"),
        pytest.param("", None, id="no header is no token"),
    ],
)
def test_vault_token_is_the_bearer_token(authorization: str, token: str | None) -> None:
    assert RESEND.vault_token({"authorization": authorization}) == token


def test_json_bodies_flatten_to_the_names_rules_use() -> None:
    body = b'{"from": "a@x.com", "to": ["b@y.com"], "tags": [{"name": "k", "value": "v"}], "headers": {"X-Id": 1}}'
    assert RESEND.parse_params(wire("application/json; charset=utf-8", body)) == {
        "from": "a@x.com",
        "to": ["b@y.com"],
        "tags[0][name]": "k",
        "tags[0][value]": "v",
        "headers[X-Id]": "1",
    }


def test_a_batch_collects_each_name_across_its_emails() -> None:
    body = b'[{"from": "a@x.com", "to": "b@y.com"}, {"from": "c@x.com", "to": ["d@y.com", "e@y.com"]}]'
    params = RESEND.parse_params(wire("application/json", body))
    assert params["to"] == ["b@y.com", "d@y.com", "e@y.com"]
    assert params["from"] == ["a@x.com", "c@x.com"]


@pytest.mark.parametrize(
    ("content_type", "body", "query", "words"),
    [
        pytest.param("application/json", b'{"to": "a@x.com", "to": "b@y.com"}', "", "more than once",
                     id="a key twice in one object"),
        pytest.param("application/json", b'{"to": "a@x.com"}', "to=b@y.com", "carries its parameters",
                     id="a post with a query string"),
        pytest.param("application/x-www-form-urlencoded", b"to=a@x.com", "", "application/json", id="a form body"),
        pytest.param("application/json; charset=utf-16", '{"to": "a@x.com"}'.encode("utf-16-le"), "", "charset",
                     id="utf-16"),
        pytest.param("application/json", '{"to": "a@x.com"}'.encode("utf-16"), "", "UTF-8", id="utf-16 with a BOM"),
        pytest.param("application/json", b"{not json", "", "not valid JSON", id="broken JSON"),
        pytest.param("application/json", b'{"to": NaN}', "", "not JSON", id="NaN"),
        pytest.param("application/json", b'{"to": "a@x.com\\ud800"}', "", "surrogate", id="a lone surrogate"),
        pytest.param("application/json", b'["a@x.com"]', "", "list of objects", id="a list of strings"),
        pytest.param("application/json", b'{"To": "a@x.com"}', "", "not a Resend field", id="To"),
        pytest.param("application/json", b'{"to": "a@x.com", "CC": "b@y.com"}', "", "not a Resend field", id="CC"),
        pytest.param("application/json", b'{"to": "a@x.com", "headers": {"Bcc": "b@y.com"}}', "", "custom header",
                     id="Bcc in headers"),
        pytest.param("application/json", b'{"to": "a@x.com", "headers": {" to ": "b@y.com"}}', "", "custom header",
                     id="to in headers"),
        pytest.param("application/json", b'[{"to": "a@x.com"}, {"to": "c@x.com", "headers": {"CC": "b@y.com"}}]',
                     "", "custom header", id="Cc in a batch email's headers"),
        pytest.param("application/json", b'{"to": "a@x.com", "headers": {"From": "ceo@x.com"}}', "", "custom header",
                     id="From in headers"),
    ],
)  # fmt: skip
def test_bodies_that_could_be_read_two_ways_are_refused(
    content_type: str, body: bytes, query: str, words: str
) -> None:
    with pytest.raises(Ambiguous, match=words):
        RESEND.parse_params(wire(content_type, body, query))


@pytest.mark.parametrize(
    ("method", "path", "name", "pricing"),
    [
        pytest.param("POST", "/emails", "emails.send", "email", id="send"),
        pytest.param("POST", "/emails/batch", "emails.batch", "email", id="send a batch"),
        pytest.param(
            "GET", "/emails/4ef9a417-02e9-4d39-ad75-9611e0fcc33c", "emails.get", "free", id="read one"
        ),
        pytest.param(
            "POST",
            "/emails/4ef9a417-02e9-4d39-ad75-9611e0fcc33c/cancel",
            "emails.cancel",
            "free",
            id="cancel",
        ),
        pytest.param("POST", "/broadcasts", "unknown.write", "unpriced", id="an unknown write"),
        pytest.param("GET", "/domains", "unknown.read", "free", id="an unknown read"),
    ],
)
def test_routes_match(method: str, path: str, name: str, pricing: str) -> None:
    ep = RESEND.match(method, path)
    assert (ep.name, ep.pricing) == (name, pricing)
    assert RESEND.accounts(ep, {}, {}) == frozenset()  # one key is one Resend account


def test_upstream_gets_the_real_key_as_bearer() -> None:
    assert RESEND.upstream_headers("re_real", {"authorization": "Bearer tgk_x"}) == {
        "authorization": "Bearer re_real"
    }


@pytest.mark.parametrize(
    ("status", "sdk_status", "name", "exception"),
    [
        pytest.param(401, 403, "invalid_api_key", InvalidApiKeyError, id="an unknown or revoked key"),
        pytest.param(402, 429, "daily_quota_exceeded", RateLimitError, id="the cap is Resend's daily quota"),
        pytest.param(403, 403, "validation_error", ResendError, id="refused by the policy"),
        pytest.param(400, 400, "validation_error", ValidationError, id="an unreadable request"),
        pytest.param(429, 429, "rate_limit_exceeded", RateLimitError, id="the loop breaker"),
        pytest.param(503, 503, "application_error", ResendError, id="Tollgate unavailable"),
    ],
)
def test_denials_become_resend_exceptions(
    status: int, sdk_status: int, name: str, exception: type[ResendError]
) -> None:
    rendered = RESEND.deny(
        Denial("tollgate_rule_x", status, "Daily spend cap reached", headers={"x-tollgate-rule": "x"})
    )
    assert rendered.status == sdk_status
    assert rendered.headers["content-type"] == "application/json"
    body = json.loads(rendered.body)
    assert body == {"statusCode": sdk_status, "name": name, "message": "Daily spend cap reached"}
    with pytest.raises(exception) as raised:
        raise_for_code_and_type(body["statusCode"], body["name"], body["message"], rendered.headers)
    assert type(raised.value) is exception
    assert raised.value.message == "Daily spend cap reached"
    assert raised.value.headers == rendered.headers


def test_an_approvals_id_is_a_field_of_the_body() -> None:
    r = RESEND.deny(
        Denial("tollgate_approval_required", 403, "Approval apr-1 is pending", approval_id="apr-1")
    )
    assert json.loads(r.body) == {
        "statusCode": 403,
        "name": "validation_error",
        "message": "Approval apr-1 is pending",
        "approval_id": "apr-1",
    }


@pytest.mark.parametrize(
    ("method", "headers", "key"),
    [
        pytest.param("POST", {"idempotency-key": "welcome/42"}, "welcome/42", id="a send under a key"),
        pytest.param("POST", {"idempotency-key": "  "}, None, id="a blank key is none"),
        pytest.param("POST", {}, None, id="no header"),
        pytest.param("GET", {"idempotency-key": "k"}, None, id="reads are not deduplicated"),
    ],
)
def test_resend_deduplicates_sends_by_idempotency_key(
    method: str, headers: dict[str, str], key: str | None
) -> None:
    assert isinstance(RESEND, Idempotent)
    assert RESEND.idempotency_key(method, headers) == key
