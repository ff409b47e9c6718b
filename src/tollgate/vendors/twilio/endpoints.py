"""Twilio's route table: method + path template → how the call is priced and whom it reaches. Pure.

Pricing rules (facts.py implements them):
  free         moves no money
  unpriced     may move money Tollgate cannot price: denied, never guessed
  message      POST …/Messages.json: SMS segments of `Body`, or one MMS with `MediaUrl`, to `To`
  call         POST …/Calls.json: the policy's per-call reservation (a call's length is unknown up front)
  call_update  free when it only ends the call; redirecting it (new Url or Twiml) can dial anyone: unpriced

Scope rules (recipients):
  to           the `To` parameter
  none         reaches no one
"""

from __future__ import annotations

import re

from tollgate.vendors.base import Endpoint
from tollgate.vendors.routes import Route, RouteTable

# A Twilio SID: a two-letter type (AC account, SM message, CA call, …) and 32 hex digits.
SID_PATTERN = r"[A-Z]{2}[0-9a-fA-F]{32}"
_ACCOUNT = "/2010-04-01/Accounts/{AccountSid}"
# The account SID of any path under /2010-04-01/Accounts/, known route or not ('…/Accounts/AC1.json' too).
_ACCOUNT_IN_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+?)(?:\.json)?(?:/|$)")


ROUTES: tuple[Route, ...] = (
    Route("POST", f"{_ACCOUNT}/Messages.json", "messages.create", "message", "to"),
    Route("GET", f"{_ACCOUNT}/Messages.json", "messages.list", "free", "none"),
    Route("GET", f"{_ACCOUNT}/Messages/{{Sid}}.json", "messages.fetch", "free", "none"),
    # Redacting a body or cancelling a scheduled message sends nothing.
    Route("POST", f"{_ACCOUNT}/Messages/{{Sid}}.json", "messages.update", "free", "none"),
    Route("DELETE", f"{_ACCOUNT}/Messages/{{Sid}}.json", "messages.delete", "free", "none"),
    Route("POST", f"{_ACCOUNT}/Calls.json", "calls.create", "call", "to"),
    Route("GET", f"{_ACCOUNT}/Calls.json", "calls.list", "free", "none"),
    Route("GET", f"{_ACCOUNT}/Calls/{{Sid}}.json", "calls.fetch", "free", "none"),
    Route("POST", f"{_ACCOUNT}/Calls/{{Sid}}.json", "calls.update", "call_update", "none"),
    Route("DELETE", f"{_ACCOUNT}/Calls/{{Sid}}.json", "calls.delete", "free", "none"),
    Route("GET", f"{_ACCOUNT}.json", "accounts.fetch", "free", "none"),
)

_TABLE = RouteTable(ROUTES, id_pattern=SID_PATTERN, unknown_scope="none")


def match(method: str, path: str) -> Endpoint:
    return _TABLE.match(method, path)


def account_in_path(path: str) -> str | None:
    """The account SID a path acts on, for every path under /2010-04-01/Accounts/."""
    m = _ACCOUNT_IN_PATH.match(path)
    return m.group(1) if m else None
