"""Denials in Stripe's own error format, so stripe-python raises its usual exception. Pure.

stripe-python picks the exception from the status (401 AuthenticationError, 402 CardError,
403 PermissionError, 404/400 InvalidRequestError, 429 RateLimitError, 5xx APIError) and obeys
`Stripe-Should-Retry` above its own retry rules, so every denial says plainly whether to retry. The
loop breaker's 429 (RateLimitError) says false too, so an SDK configured to retry does not storm; its
`Retry-After` header and message say when trying again can succeed.

An approval's id rides in the error object as `approval_id`, beside `code`: stripe-python keeps fields it
does not know, on `exc.error.approval_id` and in `exc.json_body`.
"""

from __future__ import annotations

import json

from tollgate.vendors.base import Denial, Rendered


def render(denial: Denial) -> Rendered:
    error: dict[str, object] = {
        "type": _type(denial),
        "code": denial.code,
        "message": denial.message,
    }
    if denial.approval_id is not None:
        error["approval_id"] = denial.approval_id
    headers = {
        "content-type": "application/json",
        "stripe-should-retry": "true" if denial.retry else "false",
        **denial.headers,
    }
    return Rendered(denial.status, headers, json.dumps({"error": error}).encode())


def _type(denial: Denial) -> str:
    if denial.status >= 500:
        return "api_error"
    # stripe-python raises IdempotencyError for this type, as for Stripe's own refusal of a reused key.
    if denial.code == "tollgate_idempotency_key_reused":
        return "idempotency_error"
    return "invalid_request_error"
