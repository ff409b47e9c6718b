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
from dataclasses import dataclass

from tollgate.vendors.base import Endpoint

_ACCOUNT = "/2010-04-01/Accounts/{AccountSid}"
# The account SID of any path under /2010-04-01/Accounts/, known route or not ('…/Accounts/AC1.json' too).
_ACCOUNT_IN_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+?)(?:\.json)?(?:/|$)")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    name: str
    pricing: str
    scope: str

    def compiled(self) -> re.Pattern[str]:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[A-Za-z0-9]+)", re.escape(self.template))
        return re.compile(f"^{pattern}$")


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

_COMPILED = tuple((r, r.compiled()) for r in ROUTES)


def match(method: str, path: str) -> Endpoint:
    method = method.upper()
    for route, regex in _COMPILED:
        if route.method == method and (m := regex.match(path)):
            return Endpoint(
                route.method, route.template, route.name, route.pricing, route.scope, m.groupdict()
            )
    if method in ("GET", "HEAD"):
        return Endpoint(method, path, "unknown.read", "free", "none")
    return Endpoint(method, path, "unknown.write", "unpriced", "none")


def account_in_path(path: str) -> str | None:
    """The account SID a path acts on, for every path under /2010-04-01/Accounts/."""
    m = _ACCOUNT_IN_PATH.match(path)
    return m.group(1) if m else None
