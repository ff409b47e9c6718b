"""What a Resend answer proves about money. Pure.

Resend refuses an email (or a whole batch) before sending anything with: 400 bad request, 401
`missing_api_key`, 403 `invalid_api_key`, 404 not found, 405 method not allowed, 409 an idempotency key
in use or reused with another payload, 422 `validation_error` (and the other 422 names), 429
`rate_limit_exceeded` / `daily_quota_exceeded`. A 5xx, a timeout or a reset says nothing about
whether mail went out: those stay counted.
"""

from __future__ import annotations

from tollgate.vendors.base import Delivery, Settlement, settle_by_status

NOT_PROCESSED = frozenset({400, 401, 403, 404, 405, 409, 422, 429})


def settlement(delivery: Delivery) -> Settlement:
    return settle_by_status(delivery, NOT_PROCESSED)
