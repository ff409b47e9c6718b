"""Vendor knowledge: which endpoints exist, what they cost, whom they touch, how errors look. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tollgate.vendors.base import Vendor
from tollgate.vendors.observed import Observed
from tollgate.vendors.resend import RESEND
from tollgate.vendors.resend import observed as resend_observed
from tollgate.vendors.resend.endpoints import ROUTES as RESEND_ROUTES
from tollgate.vendors.resend.redact import REDACTED as RESEND_REDACTED
from tollgate.vendors.routes import Route
from tollgate.vendors.stripe import STRIPE
from tollgate.vendors.stripe import observed as stripe_observed
from tollgate.vendors.stripe.endpoints import ROUTES as STRIPE_ROUTES
from tollgate.vendors.stripe.redact import REDACTED as STRIPE_REDACTED
from tollgate.vendors.twilio import TWILIO
from tollgate.vendors.twilio import observed as twilio_observed
from tollgate.vendors.twilio.endpoints import ROUTES as TWILIO_ROUTES
from tollgate.vendors.twilio.redact import REDACTED as TWILIO_REDACTED

VENDORS: dict[str, Vendor] = {STRIPE.name: STRIPE, TWILIO.name: TWILIO, RESEND.name: RESEND}
# The endpoints each vendor module knows, for `tollgate check` to flag allow entries that match none.
ROUTES: dict[str, tuple[Route, ...]] = {
    STRIPE.name: STRIPE_ROUTES,
    TWILIO.name: TWILIO_ROUTES,
    RESEND.name: RESEND_ROUTES,
}

# Parameter names whose values never reach the audit (tollgate.vendors.redaction).
REDACTED: dict[str, frozenset[str]] = {
    STRIPE.name: STRIPE_REDACTED,
    TWILIO.name: TWILIO_REDACTED,
    RESEND.name: RESEND_REDACTED,
}

# What each vendor's answer says it did, from the fields Envoy read out of it (tollgate.envoy.capture).
OBSERVERS: dict[str, Callable[[Mapping[str, object]], Observed]] = {
    STRIPE.name: stripe_observed.observed,
    TWILIO.name: twilio_observed.observed,
    RESEND.name: resend_observed.observed,
}


def vendor(name: str) -> Vendor | None:
    return VENDORS.get(name)
