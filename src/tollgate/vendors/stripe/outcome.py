"""What a Stripe answer proves about money. Pure.

Stripe runs a request or refuses it before doing anything: these statuses mean "not processed", so a
reservation can be given back. 400 invalid request (idempotency errors included), 401 bad key, 402 the
card or the request failed (nothing captured), 403 permission, 404 no such object, 409 a conflicting
request with the same idempotency key still in flight, 429 rate limited. A 5xx is Stripe's own
"the outcome is undetermined" (its docs say to retry with the same idempotency key and check), and a
timeout or reset says nothing: those stay counted.
"""

from __future__ import annotations

from tollgate.vendors.base import Delivery, Settlement, settle_by_status

NOT_PROCESSED = frozenset({400, 401, 402, 403, 404, 409, 429})


def settlement(delivery: Delivery) -> Settlement:
    return settle_by_status(delivery, NOT_PROCESSED)
