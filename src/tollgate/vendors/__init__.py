"""Vendor knowledge: which endpoints exist, what they cost, whom they touch, how errors look. Pure."""

from __future__ import annotations

from tollgate.vendors.base import Vendor
from tollgate.vendors.resend import RESEND
from tollgate.vendors.stripe import STRIPE
from tollgate.vendors.twilio import TWILIO

# The registry: a vendor is its folder plus one entry here (README, "Adding a vendor"). Everything else
# asks it by name (policy/ through policy/extension.py): the policy model's list of vendors, the CRD's
# enum and ext_authz's routing follow it, in this order.
VENDORS: dict[str, Vendor] = {v.name: v for v in (STRIPE, TWILIO, RESEND)}


def vendor(name: str) -> Vendor | None:
    return VENDORS.get(name)


def captured_fields() -> frozenset[str]:
    """The members of vendors' answers Envoy keeps (EnvoyParams.captured_fields): every vendor's, since
    one filter reads the answers of all routes and each vendor's `observed` picks its own."""
    return frozenset().union(*(v.captured for v in VENDORS.values()))
