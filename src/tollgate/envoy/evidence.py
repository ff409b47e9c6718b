"""What one Envoy access-log entry proves about a forwarded request's fate. Pure.

Two facts matter for money (see tollgate.vendors.base.Delivery):
- who answered: `%RESPONSE_CODE_DETAILS%` is `via_upstream` only when the status came from the vendor;
  any other detail (`upstream_response_timeout`, `upstream_reset_before_response_started{…}`,
  `downstream_remote_disconnect`, …) means Envoy wrote the status itself, or there was none (0);
- whether the request left: only these `%RESPONSE_FLAGS%` prove it never reached the vendor, because
  Envoy stopped before a byte of it went upstream: UH (no healthy upstream), UF (the upstream
  connection could not be made), UO (circuit breaker overflow), NR / NC (no route or cluster),
  DF (DNS failed), UAEX (ext_authz denied it). So does an empty `%UPSTREAM_HOST%`: the router never
  picked a host. A reset after sending (UC, UR, LR), a timeout (UT, SI, UMSDR) or a client that
  went away (DC) proves nothing.
Measured against a real Envoy 1.40 in tests/e2e/test_settlement.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollgate.vendors.base import Delivery

VIA_UPSTREAM = "via_upstream"
NEVER_SENT_FLAGS = frozenset({"UH", "UF", "UO", "NR", "NC", "DF", "UAEX"})


def flags(value: str | None) -> frozenset[str]:
    """`%RESPONSE_FLAGS%` is a comma-separated list ("-" when none)."""
    if not value or value == "-":
        return frozenset()
    return frozenset(f.strip() for f in value.split(",") if f.strip())


def delivery(entry: Mapping[str, Any]) -> Delivery:
    """The Delivery of an access-log entry (fields as in tollgate.envoy.render.ACCESS_LOG_FORMAT)."""
    status = entry.get("response_code")
    via_upstream = entry.get("response_code_details") == VIA_UPSTREAM
    vendor_status = status if via_upstream and isinstance(status, int) and status > 0 else None
    host = entry.get("upstream_host")
    no_host = not isinstance(host, str) or host in ("", "-")
    never = vendor_status is None and (no_host or bool(flags(entry.get("response_flags")) & NEVER_SENT_FLAGS))
    return Delivery(vendor_status=vendor_status, never_sent=never)
