"""Denials in Twilio's own error format, so twilio-python raises its usual exception. Pure.

twilio-python raises `TwilioRestException` for any status ≥ 400 and reads `code` and `message` from a
`{"code", "message", "more_info", "status"}` body (and `details`, which carries the Tollgate rule). The
status is kept as the rule gives it (402 for the cap), so `exc.status` tells a cap from a refusal. Codes
are Twilio's where it has one for the status; otherwise the status itself, which is what twilio-python
reports when Twilio sends no code. No approval id: a Twilio policy has no spec.approval (Twilio's API
has no Idempotency-Key an approved retry could be tied to).
"""

from __future__ import annotations

import json

from tollgate.vendors.base import Denial, Rendered

# Twilio's own codes for these statuses: 20003 authenticate, 20403 forbidden, 20404 not found,
# 20429 too many requests, 20503 service unavailable.
TWILIO_CODES = {401: 20003, 403: 20403, 404: 20404, 429: 20429, 503: 20503}


def render(denial: Denial) -> Rendered:
    code = TWILIO_CODES.get(denial.status, denial.status)
    body: dict[str, object] = {
        "code": code,
        "message": denial.message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}" if denial.status in TWILIO_CODES else "",
        "status": denial.status,
        "details": {"tollgate_rule": denial.code},
    }
    headers = {"content-type": "application/json", **denial.headers}
    return Rendered(denial.status, headers, json.dumps(body).encode())
