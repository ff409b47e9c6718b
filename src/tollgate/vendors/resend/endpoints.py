"""Resend's route table: method + path template → how the call is priced and whom it reaches. Pure.

Pricing rules (facts.py implements them):
  free      moves no money
  unpriced  may move money Tollgate cannot price (a broadcast to an audience, unknown writes): denied
  email     one email per recipient: every address in to, cc and bcc, of every email in a batch

Scope rules (recipients):
  recipients  every to, cc and bcc address
  none        reaches no one
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tollgate.vendors.base import Endpoint


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    name: str
    pricing: str
    scope: str

    def compiled(self) -> re.Pattern[str]:
        # Resend ids are UUIDs, with hyphens.
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[A-Za-z0-9_-]+)", re.escape(self.template))
        return re.compile(f"^{pattern}$")


ROUTES: tuple[Route, ...] = (
    Route("POST", "/emails", "emails.send", "email", "recipients"),
    Route("POST", "/emails/batch", "emails.batch", "email", "recipients"),
    Route("GET", "/emails", "emails.list", "free", "none"),
    Route("GET", "/emails/{id}", "emails.get", "free", "none"),
    # Rescheduling or cancelling an email already counted sends nothing new.
    Route("PATCH", "/emails/{id}", "emails.update", "free", "none"),
    Route("POST", "/emails/{id}/cancel", "emails.cancel", "free", "none"),
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
