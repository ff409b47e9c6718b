"""Denials in Resend's own error format, so resend-python raises its usual exception. Pure.

resend-python picks the exception from (status, `name`) of `{"statusCode", "name", "message"}` and keeps
the response headers on it (`exc.headers["x-tollgate-rule"]`). Tollgate's statuses are mapped onto the
pairs Resend itself uses for the same situation:

  401 key unknown, revoked, expired, suspended → 403 invalid_api_key: InvalidApiKeyError, which keeps our
      message (MissingApiKeyError, for 401 missing_api_key, replaces it with a fixed one)
  400 unreadable request → 400 validation_error: ValidationError
  402 daily cap → 429 daily_quota_exceeded: RateLimitError. Resend has no 402; its own daily sending quota
      is this very situation, and the message says when the cap resets
  403 refused by the policy → 403 validation_error, as Resend answers a recipient it will not send to
  429, 404, 5xx → rate_limit_exceeded, not_found, application_error

An approval's id is an `approval_id` field of the body for clients that read it; resend-python keeps only
name and message (and the headers, where `x-tollgate-approval-id` carries it too).
"""

from __future__ import annotations

import json

from tollgate.vendors.base import Denial, Rendered

_SHAPES: dict[int, tuple[int, str]] = {
    400: (400, "validation_error"),
    401: (403, "invalid_api_key"),
    402: (429, "daily_quota_exceeded"),
    403: (403, "validation_error"),
    404: (404, "not_found"),
    429: (429, "rate_limit_exceeded"),
}


def render(denial: Denial) -> Rendered:
    status, name = _SHAPES.get(denial.status, (denial.status, "application_error"))
    body: dict[str, object] = {"statusCode": status, "name": name, "message": denial.message}
    if denial.approval_id is not None:
        body["approval_id"] = denial.approval_id
    headers = {"content-type": "application/json", **denial.headers}
    return Rendered(status, headers, json.dumps(body).encode())
