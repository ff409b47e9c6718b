"""`tollgate check`: what the gateway would refuse in a folder of manifests, and what it would accept but
probably not mean (an allow entry no known endpoint matches, such as `POST /v1/refund`)."""

from __future__ import annotations

from tollgate.policy.manifests import Manifests
from tollgate.policy.rules import EndpointPattern
from tollgate.vendors import vendor


def allow_warnings(m: Manifests) -> list[str]:
    """One line per allow entry that matches no endpoint its vendor module knows."""
    out = []
    for policy in m.policies.values():
        known = vendor(policy.spec.vendor)
        routes = known.routes if known is not None else ()
        for i, entry in enumerate(policy.spec.allow):
            if not any(r.allowed_by(entry.method, entry.segments) for r in routes):
                out.append(f"SpendPolicy {policy.id}: spec.allow[{i}]: {_unknown(entry, policy.spec.vendor)}")
    return out


def _unknown(entry: EndpointPattern, vendor: str) -> str:
    what = f"{str(entry)!r} matches no {vendor} endpoint Tollgate knows (a typo?)"
    if entry.method in ("GET", "HEAD"):
        return f"{what}; a read there costs nothing but Tollgate knows nothing of what it returns"
    return f"{what}; a write there is refused as unpriced (tollgate_endpoint_unpriced) whatever allow says"
