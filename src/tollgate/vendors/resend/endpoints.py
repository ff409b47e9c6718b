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

from tollgate.vendors.base import Endpoint
from tollgate.vendors.routes import Route, RouteTable

ROUTES: tuple[Route, ...] = (
    Route("POST", "/emails", "emails.send", "email", "recipients"),
    Route("POST", "/emails/batch", "emails.batch", "email", "recipients"),
    Route("GET", "/emails", "emails.list", "free", "none"),
    Route("GET", "/emails/{id}", "emails.get", "free", "none"),
    # Rescheduling or cancelling an email already counted sends nothing new.
    Route("PATCH", "/emails/{id}", "emails.update", "free", "none"),
    Route("POST", "/emails/{id}/cancel", "emails.cancel", "free", "none"),
)

# Resend ids are UUIDs.
ID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_TABLE = RouteTable(ROUTES, id_pattern=ID_PATTERN, unknown_scope="none")


def match(method: str, path: str) -> Endpoint:
    return _TABLE.match(method, path)
