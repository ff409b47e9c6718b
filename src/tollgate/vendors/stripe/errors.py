"""Denials in Stripe's own error format, so stripe-python raises its usual exception. Pure.

stripe-python picks the exception from the status (401 AuthenticationError, 402 CardError,
403 PermissionError, 404/400 InvalidRequestError, 429 RateLimitError, 5xx APIError) and obeys
`Stripe-Should-Retry` above its own retry rules, so every denial says plainly whether to retry.
"""

from __future__ import annotations

import json

from tollgate.vendors.base import Denial, Rendered


def render(denial: Denial) -> Rendered:
    error: dict[str, object] = {
        "type": "api_error" if denial.status >= 500 else "invalid_request_error",
        "code": denial.code,
        "message": denial.message,
    }
    headers = {
        "content-type": "application/json",
        "stripe-should-retry": "true" if denial.retry else "false",
        **denial.headers,
    }
    return Rendered(denial.status, headers, json.dumps({"error": error}).encode())
