"""Twilio pricing and scoping from the request alone: SMS segments, MMS, calls, and what is refused."""

from typing import Any

import pytest

from tollgate.vendors.base import Facts, Found, Invalid, Unpriced, Usage
from tollgate.vendors.twilio import TWILIO

SID = "AC" + "0" * 32
MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"
CALLS = f"/2010-04-01/Accounts/{SID}/Calls.json"
TO = "+14155550100"


def facts(path: str, params: dict[str, Any], method: str = "POST") -> Any:
    return TWILIO.facts(TWILIO.match(method, path), params, {}, Found(), False)


def usage(f: Any) -> tuple[str, int, str]:
    assert isinstance(f, Facts), f
    (u,) = f.usage
    return u.unit, u.quantity, u.destination


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"To": TO, "Body": "hi"}, ("sms_segment", 1, TO), id="a short SMS is one segment"),
        pytest.param(
            {"To": TO, "Body": "a" * 161}, ("sms_segment", 2, TO), id="161 GSM-7 characters are two"
        ),
        pytest.param(
            {"To": TO, "Body": "😀" * 36}, ("sms_segment", 2, TO), id="36 emoji are two UCS-2 segments"
        ),
        pytest.param(
            {"To": TO, "Body": "hi", "MediaUrl": "https://x/cat.png"},
            ("mms", 1, TO),
            id="a MediaUrl makes an MMS",
        ),
        pytest.param(
            {"To": TO, "MediaUrl": ["https://x/1.png", "https://x/2.png"]},
            ("mms", 1, TO),
            id="several media are still one MMS",
        ),
        pytest.param(
            {"To": TO, "Body": "a" * 500, "SendAsMms": "true"}, ("mms", 1, TO), id="SendAsMms prices an MMS"
        ),
        pytest.param(
            {"To": TO, "MessagingServiceSid": "MG1", "Body": "hi"},
            ("sms_segment", 1, TO),
            id="a messaging service instead of From changes nothing",
        ),
    ],
)
def test_messages_count_the_units_twilio_bills(params: dict, expected: tuple[str, int, str]) -> None:
    f = facts(MESSAGES, params)
    assert usage(f) == expected
    assert f.recipients == frozenset({TO})
    assert f.cost is None  # priced by the grant, not in a currency


def test_a_call_is_one_call_unit_to_its_recipient() -> None:
    f = facts(CALLS, {"To": TO, "From": "+15005550006", "Url": "https://x/twiml"})
    assert usage(f) == ("call", 1, TO)
    assert "callReservationUsd" in f.usage[0].hint


def test_a_call_to_a_client_or_sip_address_names_it_as_the_recipient() -> None:
    f = facts(CALLS, {"To": "client:alice", "From": "+15005550006", "Url": "https://x/twiml"})
    assert isinstance(f, Facts) and f.recipients == frozenset({"client:alice"})


@pytest.mark.parametrize(
    ("path", "params", "kind", "words"),
    [
        pytest.param(MESSAGES, {"Body": "hi"}, Invalid, "'To' is required", id="a message without To"),
        pytest.param(MESSAGES, {"To": TO}, Invalid, "Body", id="a message without Body or MediaUrl"),
        pytest.param(
            MESSAGES, {"To": [TO, "+14155550199"], "Body": "hi"}, Invalid, "single", id="To given twice"
        ),
        pytest.param(MESSAGES, {"To": TO, "Body": ["a", "b"]}, Invalid, "single", id="Body given twice"),
        pytest.param(MESSAGES, {"To": "4155550100", "Body": "hi"}, Invalid, "E.164", id="a number without +"),
        pytest.param(
            MESSAGES, {"To": "whatsapp:" + TO, "Body": "hi"}, Unpriced, "whatsapp", id="a WhatsApp message"
        ),
        pytest.param(
            MESSAGES, {"To": TO, "ContentSid": "HX1"}, Unpriced, "Content template", id="a content template"
        ),
        pytest.param(CALLS, {"From": "+15005550006"}, Invalid, "'To' is required", id="a call without To"),
        pytest.param(
            f"/2010-04-01/Accounts/{SID}/Calls/CA{'1' * 32}.json",
            {"Twiml": "<Response><Dial>+442071234567</Dial></Response>"},
            Unpriced,
            "dial",
            id="redirecting a live call",
        ),
    ],
)
def test_what_cannot_be_counted_exactly_is_refused(path: str, params: dict, kind: type, words: str) -> None:
    f = facts(path, params)
    assert isinstance(f, kind), f
    assert words in f.message


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        pytest.param(
            "POST",
            f"/2010-04-01/Accounts/{SID}/Calls/CA{'1' * 32}.json",
            {"Status": "completed"},
            id="hang up",
        ),
        pytest.param(
            "POST", f"/2010-04-01/Accounts/{SID}/Messages/SM{'1' * 32}.json", {"Body": ""}, id="redact a body"
        ),
        pytest.param("GET", MESSAGES, {"To": TO}, id="list messages"),
        pytest.param(
            "DELETE", f"/2010-04-01/Accounts/{SID}/Messages/SM{'1' * 32}.json", {}, id="delete a message"
        ),
    ],
)
def test_calls_that_send_nothing_cost_nothing_and_reach_no_one(method: str, path: str, params: dict) -> None:
    assert facts(path, params, method) == Facts(cost=None)


def test_usage_carries_a_hint_for_the_denial_when_the_policy_has_no_price() -> None:
    f = facts(MESSAGES, {"To": "+18765550100", "Body": "hi"})
    assert isinstance(f, Facts)
    assert f.usage == (Usage("sms_segment", 1, "+18765550100", f.usage[0].hint),)
    assert "spec.prices" in f.usage[0].hint and "smsSegmentUsd" in f.usage[0].hint
