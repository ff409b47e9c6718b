"""What a Twilio answer proves about money. Pure.

Twilio validates a Messages or Calls create before it creates the resource, and bills only a resource
it created (answered 201, even if delivery fails later). These statuses mean nothing was created:
400 invalid parameters (21211 bad `To`, 21606 bad `From`, …), 401 authentication (20003), 403 permission
(20403), 404 no such account or resource, 405 method not allowed, 429 too many requests (20429).
A 5xx, a timeout or a reset says nothing about whether the message went out: those stay counted.
"""

from __future__ import annotations

from tollgate.vendors.base import Delivery, Settlement, settle_by_status

NOT_PROCESSED = frozenset({400, 401, 403, 404, 405, 429})


def settlement(delivery: Delivery) -> Settlement:
    return settle_by_status(delivery, NOT_PROCESSED)
