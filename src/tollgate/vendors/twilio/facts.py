"""Twilio call → Facts: the units it will be billed for and the number it reaches. Pure.

Everything is in the request: the segments of `Body`, an MMS for `MediaUrl`, one call for Calls create.
The grant prices the units (defaults and the policy's prices); this module only counts them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tollgate.policy.rules import ParamValue
from tollgate.vendors.base import Endpoint, Facts, Invalid, Unpriced, Usage
from tollgate.vendors.twilio import segments
from tollgate.vendors.twilio.prices import CALL, MMS, SMS_SEGMENT

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
# Updating a live call with only these parameters can end it, never extend or redirect it.
_CALL_ENDING = frozenset({"Status", "StatusCallback", "StatusCallbackMethod"})
_PRICE_HINT = "Add an entry for its country prefix to spec.prices"


def facts(endpoint: Endpoint, params: Mapping[str, ParamValue]) -> Facts | Invalid | Unpriced:
    p = endpoint.pricing
    if p == "free":
        return Facts(cost=None)
    if p == "unpriced":
        return Unpriced(
            f"{endpoint.method} {endpoint.template} may move money in ways Tollgate cannot price, so it is refused"
        )
    if p == "message":
        return _message(params)
    if p == "call":
        return _call(params)
    if p == "call_update":
        return _call_update(params)
    raise AssertionError(f"unknown pricing {p!r}")


def _message(params: Mapping[str, ParamValue]) -> Facts | Invalid | Unpriced:
    to = _single(params, "To")
    if isinstance(to, Invalid):
        return to
    if ":" in to:  # whatsapp:+1…, messenger:…, rcs:… are billed per channel, not per SMS segment
        return Unpriced(f"Tollgate prices SMS and MMS only; {to.split(':', 1)[0]} messages are refused")
    if not _E164.fullmatch(to):
        return Invalid(f"'To' must be an E.164 number such as +14155550100, not {to!r}", "To")
    if "ContentSid" in params:
        return Unpriced("a Content template's text is not in the request, so its segments cannot be counted")
    body = params.get("Body", "")
    if isinstance(body, list):
        return Invalid("parameter 'Body' must be a single value", "Body")
    if "MediaUrl" in params or params.get("SendAsMms") == "true":
        usage = Usage(MMS, 1, to, f"{_PRICE_HINT} (mmsUsd).")
    elif body:
        usage = Usage(SMS_SEGMENT, segments.count(body).count, to, f"{_PRICE_HINT} (smsSegmentUsd).")
    else:
        return Invalid("a message needs a 'Body' or a 'MediaUrl'", "Body")
    return Facts(cost=None, recipients=frozenset({to}), usage=(usage,))


def _call(params: Mapping[str, ParamValue]) -> Facts | Invalid:
    to = _single(params, "To")
    if isinstance(to, Invalid):
        return to
    # `To` may also be client:… or sip:…; the recipient scope, if any, only lists phone numbers.
    hint = "Set spec.callReservationUsd to what each call should count against the cap."
    return Facts(cost=None, recipients=frozenset({to}), usage=(Usage(CALL, 1, to, hint),))


def _call_update(params: Mapping[str, ParamValue]) -> Facts | Unpriced:
    changed = sorted(set(params) - _CALL_ENDING)
    if changed or params.get("Status", "completed") not in ("completed", "canceled"):
        return Unpriced(
            "updating a live call other than to end it (new Url, Twiml, …) can dial numbers Tollgate "
            "cannot see or price"
        )
    return Facts(cost=None)


def _single(params: Mapping[str, ParamValue], name: str) -> str | Invalid:
    v = params.get(name)
    if v is None or v == "":
        return Invalid(f"parameter {name!r} is required", name)
    if isinstance(v, list):
        return Invalid(f"parameter {name!r} must be a single value", name)
    return v
