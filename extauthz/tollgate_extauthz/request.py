"""CheckRequest → Call. With response.py, the only modules that speak Envoy's auth protos.

The vendor comes from the route's context_extensions (set by the rendered Envoy config), never from
guessing the Host. Credentials are taken out of the headers here, so nothing past this point can log them.
"""

from __future__ import annotations

from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2

from tollgate.decide.call import Call
from tollgate.record import record
from tollgate.vendors import decision_headers, wire
from tollgate.vendors import vendor as find_vendor
from tollgate.vendors.base import Vendor

# Headers that carry credentials; none of them reaches a log, the audit or the decision.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


@record
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
    headers, repeated = _headers(http)
    token = vendor.vault_token(headers) if vendor else None
    clean = {k: v for k, v in headers.items() if k not in CREDENTIAL_HEADERS}
    body = http.raw_body if http.raw_body else http.body.encode()
    method = http.method.upper()
    params: dict = {}
    parse_error = None
    if vendor is not None:
        try:
            if repeated:
                raise wire.Ambiguous(
                    f"header {repeated[0]} is sent more than once; the vendor would see every copy"
                )
            wire.check_path(path)
            wire.check_method(headers)
            api = context.get("api", "api")  # a vendor's second host (Stripe's files.stripe.com)
            params = vendor.parse_params(wire.Wire(method, path, query, headers, body, api))
        except wire.Ambiguous as exc:
            parse_error = str(exc)
    call = Call(
        vendor=vendor.name if vendor else context.get("vendor", ""),
        method=method,
        path=path,
        params=params,
        parse_error=parse_error,
        headers=clean,
        request_id=headers.get("x-request-id") or http.id,
    )
    return Incoming(call, vendor, token)


def _headers(http: attribute_context_pb2.AttributeContext.HttpRequest) -> tuple[dict[str, str], list[str]]:
    """Lower-case name → value, and the decision-read headers sent more than once.

    Envoy sends every header as received in `header_map` (encode_raw_headers): the plain `headers` map
    would join a repeated header into one comma-separated value, hiding the repeat."""
    if not http.header_map.headers:
        return {k.lower(): v for k, v in http.headers.items()}, []
    out: dict[str, str] = {}
    repeated: list[str] = []
    for h in http.header_map.headers:
        name = h.key.lower()
        value = h.raw_value.decode("latin-1") if h.raw_value else h.value
        if name in out:
            # Asked of the registry only for a repeat, which is rare: no set is built per request.
            if name not in repeated and name in decision_headers():
                repeated.append(name)
            out[name] = f"{out[name]},{value}"  # what Envoy's joined view would say, for any other header
        else:
            out[name] = value
    return out, repeated
