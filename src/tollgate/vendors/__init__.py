"""Vendor knowledge: which endpoints exist, what they cost, whom they touch, how errors look. Pure."""

from __future__ import annotations

import re

from tollgate.vendors import wire
from tollgate.vendors.base import Vendor
from tollgate.vendors.resend import RESEND
from tollgate.vendors.stripe import STRIPE
from tollgate.vendors.twilio import TWILIO

# A vendor's name and its hosts' names: no '-', which joins them into an upstream name (`stripe-files`).
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def checked(v: Vendor) -> Vendor:
    """`v`, fit for the registry; else ValueError saying what to change."""
    if not _NAME.fullmatch(getattr(v, "name", "")):
        raise ValueError(
            f"{type(v).__name__}.name {getattr(v, 'name', None)!r} must be lower-case letters, digits and "
            "'_', starting with a letter: no '-', since the gateway reads the route `x-y` as vendor x's host y"
        )
    hosts = getattr(v, "default_urls", None)
    if not hosts or "api" not in hosts:
        raise ValueError(
            f"vendor {v.name} must declare default_urls with its main host under 'api', e.g. "
            f"{{'api': 'https://api.{v.name}.com'}}"
        )
    if bad := [h for h in hosts if not _NAME.fullmatch(h)]:
        raise ValueError(f"vendor {v.name}'s default_urls name hosts {bad}: letters, digits and '_' only")
    return v


def _registry(*vendors: Vendor) -> dict[str, Vendor]:
    out: dict[str, Vendor] = {}
    for v in map(checked, vendors):
        if v.name in out:
            raise ValueError(f"two vendors are named {v.name!r}")
        out[v.name] = v
    return out


# The registry: a vendor is its folder plus one entry here (README, "Adding a vendor"). Everything else
# asks it by name (policy/ through policy/extension.py): the policy model's list of vendors, the CRD's
# enum, ext_authz's routing, Envoy's capture and the default upstreams follow it, in this order.
VENDORS: dict[str, Vendor] = _registry(STRIPE, TWILIO, RESEND)


def vendor(name: str) -> Vendor | None:
    return VENDORS.get(name)


def upstream_name(vendor: str, host: str) -> str:
    """The gateway's name for one of a vendor's hosts: `stripe` for its main one ("api"), `stripe-files`
    for another (tollgate.envoy.params reads the name back as vendor and host)."""
    return vendor if host == "api" else f"{vendor}-{host}"


def default_urls() -> dict[str, str]:
    """Upstream name → base URL, as each vendor declares its hosts: what ext_authz reads objects from and
    local mode serves, unless configured otherwise."""
    return {
        upstream_name(v.name, host): url for v in VENDORS.values() for host, url in v.default_urls.items()
    }


def decision_headers() -> frozenset[str]:
    """Headers some decision reads, for every vendor's calls alike: the shared ones, and each vendor's."""
    own = (v.decision_headers | ({v.account_header} if v.account_header else set()) for v in VENDORS.values())
    return wire.DECISION_HEADERS.union(*own)


def captured_fields() -> frozenset[str]:
    """The members of vendors' answers Envoy keeps (EnvoyParams.captured_fields): every vendor's, since
    one filter reads the answers of all routes and each vendor's `observed` picks its own."""
    return frozenset().union(*(v.captured for v in VENDORS.values()))
