"""Benchmark: what reading a request costs ext_authz (CheckRequest → Call), per vendor. Prints figures;
not a test. The requests are what the official SDKs send, with headers as Envoy hands them over (one
entry per header as received, and the joined map too, so older readers of `headers` time the same input).

    python bench/parse.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from envoy.service.auth.v3 import external_auth_pb2

from tollgate.vendors import vendor as find_vendor
from tollgate_extauthz.request import to_incoming

SDK_HEADERS = [
    ("user-agent", "Stripe/v1 PythonBindings/16.1.0"),
    ("accept", "*/*"),
    ("x-stripe-client-user-agent", json.dumps({"bindings_version": "16.1.0", "lang": "python"})),
    ("stripe-version", "2025-01-27.acacia"),
    ("x-request-id", "3f1c5a0e-1d2b-4c5a-9e7f-0a1b2c3d4e5f"),
    ("x-forwarded-proto", "http"),
]
CASES = {
    "stripe refund": ("stripe", "/stripe", "/stripe/v1/refunds", b"charge=ch_3MxYz&amount=700&metadata[ticket]=T-42",
                      "application/x-www-form-urlencoded", "Bearer tgk_x"),
    "stripe list": ("stripe", "/stripe", "/stripe/v1/charges?customer=cus_A&limit=10&expand[]=data.customer", b"",
                    "", "Bearer tgk_x"),
    "twilio sms": ("twilio", "/twilio", "/twilio/2010-04-01/Accounts/AC" + "1f" * 16 + "/Messages.json",
                   b"To=%2B14155550100&From=%2B14155550199&Body=Your+order+shipped",
                   "application/x-www-form-urlencoded", "Basic QUMxOnRna194"),
    "resend email": ("resend", "/resend", "/resend/emails",
                     json.dumps({"from": "a@x.com", "to": ["b@y.com"], "subject": "s", "html": "<p>hi</p>"}).encode(),
                     "application/json", "Bearer tgk_x"),
}  # fmt: skip
MATCHES = {
    "stripe refund": ("stripe", "POST", "/v1/refunds"),
    "stripe balance": ("stripe", "GET", "/v1/balance_transactions"),
    "stripe nested": ("stripe", "POST", "/v1/customers/cus_A/balance_transactions"),
    "twilio sms": ("twilio", "POST", "/2010-04-01/Accounts/AC" + "1f" * 16 + "/Messages.json"),
}


def request(
    vendor: str, prefix: str, path: str, body: bytes, ctype: str, auth: str
) -> external_auth_pb2.CheckRequest:
    req = external_auth_pb2.CheckRequest()
    http = req.attributes.request.http
    http.method, http.path, http.raw_body, http.id = ("POST" if body else "GET"), path, body, "42"
    headers = [*SDK_HEADERS, ("authorization", auth), ("idempotency-key", "9b1c-uuid")]
    if ctype:
        headers.append(("content-type", ctype))
    for k, v in headers:
        http.headers[k] = v
        http.header_map.headers.add(key=k, raw_value=v.encode())
    req.attributes.context_extensions["vendor"] = vendor
    req.attributes.context_extensions["prefix"] = prefix
    return req


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=20_000)
    args = ap.parse_args()
    for name, case in CASES.items():
        req = request(*case)
        assert to_incoming(req).call.parse_error is None, to_incoming(req).call.parse_error
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(args.calls):
                to_incoming(req)
            runs.append((time.perf_counter() - started) / args.calls * 1e6)
        print(f"{name:14s} to_incoming: median {statistics.median(runs):6.1f} µs  (min {min(runs):.1f})")
    # Route matching (the table scan ext_authz runs next), on the first and the last route of the table.
    for name, (vendor, method, path) in MATCHES.items():
        v = find_vendor(vendor)
        assert v is not None
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(args.calls):
                v.match(method, path)
            runs.append((time.perf_counter() - started) / args.calls * 1e6)
        print(f"{name:14s} match:       median {statistics.median(runs):6.1f} µs  (min {min(runs):.1f})")


if __name__ == "__main__":
    main()
