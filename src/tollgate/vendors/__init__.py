"""Vendor knowledge: which endpoints exist, what they cost, whom they touch, how errors look. Pure."""

from __future__ import annotations

from tollgate.vendors.base import Vendor
from tollgate.vendors.resend import RESEND
from tollgate.vendors.resend.endpoints import ROUTES as RESEND_ROUTES
from tollgate.vendors.routes import Route
from tollgate.vendors.stripe import STRIPE
from tollgate.vendors.stripe.endpoints import ROUTES as STRIPE_ROUTES
from tollgate.vendors.twilio import TWILIO
from tollgate.vendors.twilio.endpoints import ROUTES as TWILIO_ROUTES

VENDORS: dict[str, Vendor] = {STRIPE.name: STRIPE, TWILIO.name: TWILIO, RESEND.name: RESEND}
# The endpoints each vendor module knows, for `tollgate check` to flag allow entries that match none.
ROUTES: dict[str, tuple[Route, ...]] = {
    STRIPE.name: STRIPE_ROUTES,
    TWILIO.name: TWILIO_ROUTES,
    RESEND.name: RESEND_ROUTES,
}


def vendor(name: str) -> Vendor | None:
    return VENDORS.get(name)
