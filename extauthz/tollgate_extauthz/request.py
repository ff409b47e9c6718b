"""CheckRequest → Call. With response.py, the only modules that speak Envoy's auth protos.

The vendor comes from the route's context_extensions (set by the rendered Envoy config), never from
guessing the Host. Credentials are taken out of the headers here, so nothing past this point can log them.
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.service.auth.v3 import external_auth_pb2

from tollgate.decide.call import Call
from tollgate.vendors import vendor as find_vendor
from tollgate.vendors.base import Vendor

# Headers that carry credentials; none of them reaches a log, the audit or the decision.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


@dataclass(frozen=True)
class Incoming:
    call: Call
    vendor: Vendor | None
    token: str | None


def to_incoming(req: external_auth_pb2.CheckRequest) -> Incoming:
    http = req.attributes.request.http
    context = req.attributes.context_extensions
    vendor = find_vendor(context.get("vendor", ""))
    prefix = context.get("prefix", "")
    path, _, query = http.path.partition("?")
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :] or "/"
    headers = {k.lower(): v for k, v in http.headers.items()}
    token = vendor.vault_token(headers) if vendor else None
    clean = {k: v for k, v in headers.items() if k not in CREDENTIAL_HEADERS}
    body = http.raw_body if http.raw_body else http.body.encode()
    params: dict = {}
    parse_error = None
    if vendor is not None:
        try:
            params = vendor.parse_params(headers.get("content-type", ""), body, query)
        except ValueError as exc:
            parse_error = str(exc)
    call = Call(
        vendor=vendor.name if vendor else context.get("vendor", ""),
        method=http.method.upper(),
        path=path,
        params=params,
        parse_error=parse_error,
        headers=clean,
        request_id=headers.get("x-request-id") or http.id,
    )
    return Incoming(call, vendor, token)
