"""Twilio's default prices, as data: the units Tollgate counts and what each costs unless a policy says
otherwise. A policy's `prices` entries go on top, matched by the longest destination prefix. Pure.

Only +1 has a default (US and Canada, ≈ $0.0083 per SMS segment, ≈ $0.02 per MMS). Numbers on +1 that
belong elsewhere (the Caribbean, Bermuda, US territories) are listed as unpriced, so a shorter "+1"
price never applies to them: an SMS to Jamaica costs several times a US one. Calls have no default at
all: their length is unknown when they are placed, so a policy must say what to count each one as.
"""

from __future__ import annotations

SMS_SEGMENT = "sms_segment"
MMS = "mms"
CALL = "call"

# NANP area codes that are not the 50 states or Canada: the Caribbean, Bermuda, US territories.
_AREAS = ("242", "246", "264", "268", "284", "340", "345", "441", "473", "649", "658", "664", "670", "671", "684",
          "721", "758", "767", "784", "787", "809", "829", "849", "868", "869", "876", "939")  # fmt: skip
NANP_ELSEWHERE = tuple("+1" + area for area in _AREAS)

# unit → destination prefix → USD per unit; None: refused unless the policy prices that prefix.
DEFAULT_USD: dict[str, dict[str, str | None]] = {
    SMS_SEGMENT: {"+1": "0.0083", **dict.fromkeys(NANP_ELSEWHERE)},
    MMS: {"+1": "0.02", **dict.fromkeys(NANP_ELSEWHERE)},
}
