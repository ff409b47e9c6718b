"""What Envoy answers by itself, worded in each vendor's error JSON. Pure.

Envoy refuses some requests before ext_authz sees them (malformed HTTP, an escaped slash, a header name
with an underscore, a body over the limit or shorter than its Content-Length) and answers others when a
part is down (ext_authz, the vendor). All of those are safe, but an SDK cannot read Envoy's plain-text
bodies. Each answer below becomes one local-reply mapper per served vendor (matched by the path the
client sent), rendered by that vendor's own error renderer, plus a fallback for requests whose vendor
cannot be told (a path no vendor serves, HTTP too broken to have a path): one JSON object that is each
vendor's error shape at once (Stripe's `error`, Twilio's `code`/`status`, Resend's `statusCode`/`name`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from tollgate.envoy.params import LocalReply
from tollgate.record import record
from tollgate.vendors import VENDORS
from tollgate.vendors.base import Denial, Vendor

_DETAILS = "(Envoy: %RESPONSE_CODE_DETAILS%)"


@record
class EnvoyAnswer:
    status: int
    code: str  # a rule code (tollgate.decide.rules.Rule), as in the audit
    message: str
    retry: bool = False  # Stripe-Should-Retry: the request never reached the vendor, or may be replayed


ANSWERS: tuple[EnvoyAnswer, ...] = (
    EnvoyAnswer(
        400,
        "tollgate_path_rejected",
        "The gateway refused this request before reading it: malformed HTTP, an escaped '/' or '\\' in the "
        f"path, or a header name with '_'. Nothing was sent to the vendor. {_DETAILS}",
    ),
    EnvoyAnswer(404, "tollgate_unknown_route", "%LOCAL_REPLY_BODY%"),
    EnvoyAnswer(
        408,
        "tollgate_request_timeout",
        "The request did not arrive whole in time (is the body shorter than its Content-Length?). "
        f"Nothing was sent to the vendor. {_DETAILS}",
    ),
    EnvoyAnswer(
        413,
        "tollgate_body_too_large",
        f"The request body is over the gateway's limit, so it was not sent. {_DETAILS}",
    ),
    EnvoyAnswer(
        426,
        "tollgate_path_rejected",
        f"Use HTTP/1.1 or HTTP/2; nothing was sent to the vendor. {_DETAILS}",
    ),
    EnvoyAnswer(
        431,
        "tollgate_path_rejected",
        f"The request headers are too large; nothing was sent to the vendor. {_DETAILS}",
    ),
    EnvoyAnswer(
        501,
        "tollgate_path_rejected",
        f"The gateway does not accept this request framing (Transfer-Encoding); nothing was sent. {_DETAILS}",
    ),
    EnvoyAnswer(
        502,
        "tollgate_vendor_unreachable",
        f"The vendor could not be reached or answered badly. Retry later. {_DETAILS}",
        retry=True,
    ),
    EnvoyAnswer(
        503,
        "tollgate_unavailable",
        f"Tollgate could not decide or reach the vendor; the call was not authorised. Retry later. {_DETAILS}",
        retry=True,
    ),
    EnvoyAnswer(
        504,
        "tollgate_vendor_timeout",
        "The vendor did not answer in time; it may have acted on the request. Retry with the same "
        f"Idempotency-Key so it is not done twice. {_DETAILS}",
        retry=True,
    ),
)


def local_replies(served: Mapping[str, str]) -> list[LocalReply]:
    """Mappers for the vendors served (name → gateway prefix), then the fallback for any request."""
    out: list[LocalReply] = []
    for name, prefix in served.items():
        vendor = VENDORS.get(name.partition("-")[0])  # `stripe-files` answers as Stripe
        if vendor is not None:
            out.extend(_reply(a, [vendor], prefix) for a in ANSWERS)
    out.extend(_reply(a, VENDORS.values(), None) for a in ANSWERS)
    return out


def _reply(answer: EnvoyAnswer, vendors: Iterable[Vendor], prefix: str | None) -> LocalReply:
    denial = Denial(
        code=answer.code,
        status=answer.status,
        message=answer.message,
        retry=answer.retry,
        headers={"x-tollgate-rule": answer.code},
    )
    body: dict[str, Any] = {}
    headers: dict[str, str] = {}
    statuses: set[int] = set()
    for vendor in vendors:
        rendered = vendor.deny(denial)
        body.update(json.loads(rendered.body))
        headers.update(rendered.headers)
        statuses.add(rendered.status)
    headers.pop("content-type", None)  # Envoy sets it for a JSON body
    status = statuses.pop() if len(statuses) == 1 else answer.status
    return LocalReply(
        status=answer.status,
        prefix=prefix,
        body=body,
        status_override=status if status != answer.status else None,
        headers=headers,
    )
