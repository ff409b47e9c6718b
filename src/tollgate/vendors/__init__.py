"""Vendor knowledge: which endpoints exist, what they cost, whom they touch, how errors look. Pure."""

from __future__ import annotations

from tollgate.vendors.base import Vendor
from tollgate.vendors.resend import RESEND
from tollgate.vendors.stripe import STRIPE
from tollgate.vendors.twilio import TWILIO

VENDORS: dict[str, Vendor] = {STRIPE.name: STRIPE, TWILIO.name: TWILIO, RESEND.name: RESEND}


def vendor(name: str) -> Vendor | None:
    return VENDORS.get(name)
