"""Benchmark: how long a call the vendor refused keeps its reservation. Prints figures; not a test.

A local gateway (Redis, ext_authz, Envoy, the audit ingester) in front of a stand-in vendor that answers
every payout 402 ("not processed"). For each of N sequential $1 payouts, the time from the moment the
vendor sent its refusal to the moment the key's spend in Redis is back to 0 (polled every 0.5 ms): Envoy's
access-log flush, the ingester's poll and the release script.

    python bench/settle_lag.py [--calls 200] [--flush-ms 50]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import redis

from tollgate.local.gateway import GatewayOptions, LocalGateway
from tollgate.policy.manifests import KeyObject, Manifests, PolicyObject, SecretObject
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.store import keys

KEY = "bench/refused"
REFUSAL = b'{"error": {"type": "card_error", "code": "card_declined", "message": "declined"}}'


class Vendor(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    refused_at: ClassVar[list[float]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(402)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(REFUSAL)))
        self.end_headers()
        Vendor.refused_at.append(time.monotonic())
        self.wfile.write(REFUSAL)

    def log_message(self, format: str, *args: object) -> None:
        pass


def manifests() -> Manifests:
    m = Manifests()
    spec = {"vendor": "stripe", "dailyCapUsd": "1000000", "allow": ["POST /v1/payouts"]}
    m.policies["bench/p"] = PolicyObject("bench", "p", SpendPolicySpec.model_validate(spec))
    ref = {"policyRef": {"name": "p"}, "vendorKeySecretRef": {"name": "sk", "key": "api-key"}}
    m.keys[KEY] = KeyObject("bench", "refused", VaultKeySpec.model_validate(ref))
    m.secrets["bench/sk"] = SecretObject("bench", "sk", {"api-key": "sk_test_bench"})
    return m


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--flush-ms", type=int, default=50, help="Envoy's access-log flush interval")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Vendor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    vendor_url = f"http://127.0.0.1:{server.server_address[1]}"
    options = GatewayOptions(upstreams={"stripe": vendor_url}, access_log_flush_ms=args.flush_ms)
    with LocalGateway(options) as gw:
        token = gw.apply(manifests())[KEY]
        r = redis.Redis.from_url(gw.redis_url)
        spend = keys.spend(KEY, "stripe", datetime.now(UTC).strftime("%Y%m%d"))
        lags: list[float] = []
        with httpx.Client(timeout=10) as client:
            for i in range(args.calls):
                resp = client.post(
                    f"{gw.base_url('stripe')}/v1/payouts",
                    content=b"amount=100&currency=usd",
                    headers={
                        "authorization": f"Bearer {token}",
                        "content-type": "application/x-www-form-urlencoded",
                        "idempotency-key": f"bench-{i}-{time.time_ns()}",
                    },
                )
                assert resp.status_code == 402, resp.text
                refused = Vendor.refused_at[-1]
                deadline = time.monotonic() + 30
                while int(r.get(spend) or 0) != 0:
                    if time.monotonic() > deadline:
                        raise SystemExit("a refused payout was not released within 30 s")
                    time.sleep(0.0005)
                lags.append((time.monotonic() - refused) * 1000)
        r.close()
    server.shutdown()
    print(f"vendor refusal → reservation released, {len(lags)} calls, Envoy flush {args.flush_ms} ms:")
    print(
        f"  p50 {statistics.median(lags):.0f} ms   p90 {pct(lags, 90):.0f} ms   p99 {pct(lags, 99):.0f} ms   max {max(lags):.0f} ms"
    )


if __name__ == "__main__":
    main()
