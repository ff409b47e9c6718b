"""Vendor knowledge: which endpoints exist, what they cost, whom they touch, how errors look. Pure."""

from __future__ import annotations

from tollgate.vendors.base import Vendor
from tollgate.vendors.resend import RESEND
from tollgate.vendors.routes import Route
from tollgate.vendors.stripe import STRIPE
from tollgate.vendors.twilio import TWILIO

# The registry: a vendor is its folder plus one entry here (README, "Adding a vendor"). The order is the
# order policies, the CRD and `tollgate check` list vendors in.
VENDORS: dict[str, Vendor] = {v.name: v for v in (STRIPE, TWILIO, RESEND)}
# The endpoints each vendor module knows, for `tollgate check` to flag allow entries that match none.
ROUTES: dict[str, tuple[Route, ...]] = {name: v.routes for name, v in VENDORS.items()}


def vendor(name: str) -> Vendor | None:
    return VENDORS.get(name)
