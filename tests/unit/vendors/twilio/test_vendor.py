"""Twilio at the seam: where the vault token is, how bodies are read, which account a path acts on, what
goes upstream, and denials twilio-python turns into its usual exception."""

import base64
import json

import pytest
from tests.builders import wire
from twilio.base.exceptions import TwilioRestException
from twilio.base.version import Version
from twilio.http.response import Response

from tollgate.vendors.base import Denial
from tollgate.vendors.form import Ambiguous
from tollgate.vendors.twilio import TWILIO, parse_credential

SID = "AC" + "0" * 32


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        pytest.param(basic(SID, "tgk_abc"), "tgk_abc", id="the auth token of Basic auth is the vault token"),
        pytest.param(basic("SKkey", "tgk_abc"), "tgk_abc", id="an API key SID as user name works too"),
        pytest.param(basic(SID, ""), None, id="no password is no token"),
        pytest.param(basic("", "tgk_abc"), None, id="no user name is not what an SDK sends"),
        pytest.param("Bearer tgk_abc", None, id="Twilio takes no bearer tokens"),
        pytest.param("Basic !!!", None, id="undecodable Basic auth is no token"),
        pytest.param("", None, id="no header is no token"),
    ],
)
def test_vault_token_is_the_password_of_basic_auth(authorization: str, token: str | None) -> None:
    assert TWILIO.vault_token({"authorization": authorization}) == token


def test_repeated_form_keys_become_lists_as_twilio_reads_them() -> None:
    params = TWILIO.parse_params(
        wire("application/x-www-form-urlencoded", b"To=%2B14155550100&MediaUrl=https://a&MediaUrl=https://b")
    )
    assert params == {"To": "+14155550100", "MediaUrl": ["https://a", "https://b"]}


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("content_type", "body", "query", "words"),
    [
        pytest.param(FORM, b"To=1", "To=2", "carries its parameters", id="a post with a query string"),
        pytest.param("application/json", b'{"To": "1"}', "", "not 'application/json'", id="a JSON body"),
        pytest.param(FORM, b"\xff", "", "plain form encoding", id="a body that is not UTF-8"),
        pytest.param(f"{FORM}; charset=utf-16le", b"To=1", "", "charset", id="another charset"),
        pytest.param(FORM, b"to=%2B1&Body=hi", "", "not one this API reads", id="lower-case to"),
        pytest.param(FORM, b"To=%2B1&TO=%2B2&Body=hi", "", "only in case", id="TO beside To"),
        pytest.param(FORM, b"To=%2B1&BODY=hi", "", "only in case", id="BODY"),
        pytest.param(FORM, b"To=%2B1;To=%2B2", "", "not a separator", id="a semicolon"),
    ],
)
def test_bodies_that_could_be_read_two_ways_are_refused(
    content_type: str, body: bytes, query: str, words: str
) -> None:
    with pytest.raises(Ambiguous, match=words):
        TWILIO.parse_params(wire(content_type, body, query))


@pytest.mark.parametrize(
    ("method", "path", "name", "account"),
    [
        pytest.param(
            "POST", f"/2010-04-01/Accounts/{SID}/Messages.json", "messages.create", SID, id="send SMS"
        ),
        pytest.param(
            "POST", f"/2010-04-01/Accounts/{SID}/Calls.json", "calls.create", SID, id="place a call"
        ),
        pytest.param(
            "POST",
            f"/2010-04-01/Accounts/{SID}/Calls/CA{'1' * 32}.json",
            "calls.update",
            SID,
            id="update a call",
        ),
        pytest.param(
            "GET",
            f"/2010-04-01/Accounts/{SID}/Messages/SM{'1' * 32}.json",
            "messages.fetch",
            SID,
            id="read a message",
        ),
        pytest.param("GET", f"/2010-04-01/Accounts/{SID}.json", "accounts.fetch", SID, id="read the account"),
        pytest.param(
            "POST",
            f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json",
            "unknown.write",
            SID,
            id="an unknown write still names its account",
        ),
        pytest.param(
            "GET", "/2010-04-01/Accounts.json", "unknown.read", None, id="the account list names none"
        ),
    ],
)
def test_routes_match_and_the_path_names_the_account(
    method: str, path: str, name: str, account: str | None
) -> None:
    ep = TWILIO.match(method, path)
    assert ep.name == name
    assert TWILIO.accounts(ep, {}, {}) == (frozenset({account}) if account else frozenset())


def test_unknown_writes_are_unpriced_and_unknown_reads_free() -> None:
    assert TWILIO.match("POST", f"/2010-04-01/Accounts/{SID}/Queues.json").pricing == "unpriced"
    assert TWILIO.match("GET", f"/2010-04-01/Accounts/{SID}/Queues.json").pricing == "free"


def test_upstream_gets_the_real_sid_and_token_as_basic_auth() -> None:
    real = f"{SID}:real_auth_token"
    assert TWILIO.upstream_headers(real, {}) == {"authorization": basic(SID, "real_auth_token")}


@pytest.mark.parametrize(
    ("secret", "ok"),
    [
        pytest.param(f"{SID}:token", True, id="account SID and auth token"),
        pytest.param("SKabc:secret", True, id="API key SID and secret"),
        pytest.param("token-only", False, id="a bare token"),
        pytest.param(f"{SID}:", False, id="an empty token"),
        pytest.param("user:token", False, id="a user name that is no Twilio SID"),
    ],
)
def test_the_secret_holds_sid_colon_token(secret: str, ok: bool) -> None:
    if ok:
        assert parse_credential(secret)[1] in ("token", "secret")
    else:
        with pytest.raises(ValueError, match="AccountSid:AuthToken"):
            parse_credential(secret)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param(401, 20003, id="401 is Twilio's authenticate error"),
        pytest.param(403, 20403, id="403 is Twilio's forbidden"),
        pytest.param(429, 20429, id="429 is Twilio's too many requests"),
        pytest.param(402, 402, id="the cap keeps 402 and reports it as the code"),
        pytest.param(400, 400, id="an unreadable request keeps 400"),
    ],
)
def test_denials_become_twilio_rest_exceptions_with_status_and_code(status: int, code: int) -> None:
    rendered = TWILIO.deny(
        Denial("tollgate_rule_x", status, "Daily spend cap reached", headers={"x-tollgate-rule": "x"})
    )
    assert rendered.status == status
    assert rendered.headers["content-type"] == "application/json"
    assert rendered.headers["x-tollgate-rule"] == "x"
    body = json.loads(rendered.body)
    assert body["details"] == {"tollgate_rule": "tollgate_rule_x"}
    exc = Version.exception("POST", "/Messages.json", Response(status, rendered.body.decode()), "Unable")
    assert isinstance(exc, TwilioRestException)
    assert (exc.status, exc.code) == (status, code)
    assert "Daily spend cap reached" in exc.msg
