"""Benchmark: how soon `tollgate local` follows an edit of its manifests folder. Prints figures; not a test.

A local gateway (Redis, ext_authz, Envoy, the audit, localstripe) watching a folder with one policy and
one VaultKey. N times: save the key with `suspended: true`, then call GET /v1/balance with the vault key
as fast as calls return, and time from the save to the first refused call; then resume it and wait until
calls pass again. The lag is the watcher's polls (two equal reads, tollgate.local.watch) plus the apply.

    python bench/watch_lag.py [--edits 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tollgate.local.gateway import GatewayOptions, LocalGateway

FILES = {
    "policy.yaml": """\
apiVersion: tollgate.dev/v1alpha1
kind: SpendPolicy
metadata: {name: bench, namespace: bench}
spec: {vendor: stripe, dailyCapUsd: "10", allow: [GET /v1/balance]}
""",
    "secret.yaml": """\
apiVersion: v1
kind: Secret
metadata: {name: stripe-key, namespace: bench}
stringData: {api-key: sk_test_bench_watch}
""",
}
KEY = """\
apiVersion: tollgate.dev/v1alpha1
kind: VaultKey
metadata: {{name: bot, namespace: bench}}
spec: {{policyRef: {{name: bench}}, vendorKeySecretRef: {{name: stripe-key, key: api-key}}, suspended: {}}}
"""


def until(client: httpx.Client, url: str, status: int, timeout_s: float = 30.0) -> float:
    """Call until the gateway answers `status`; returns the time that answer arrived."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get(url).status_code == status:
            return time.monotonic()
    raise SystemExit(f"no {status} within {timeout_s}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edits", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "manifests"
        folder.mkdir()
        for name, text in FILES.items():
            (folder / name).write_text(text)
        key = folder / "bot.yaml"
        key.write_text(KEY.format("false"))
        options = GatewayOptions(manifests=folder, localstripe=True, watch=True, workdir=Path(tmp) / "work")
        with LocalGateway(options) as gw, httpx.Client(auth=(gw.tokens["bench/bot"], "")) as client:
            url = f"{gw.base_url('stripe')}/v1/balance"
            until(client, url, 200)
            lags = []
            for _ in range(args.edits):
                saved = time.monotonic()
                key.write_text(KEY.format("true"))
                lags.append(until(client, url, 401) - saved)
                key.write_text(KEY.format("false"))
                until(client, url, 200)
    ms = sorted(lag * 1000 for lag in lags)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(f"save `suspended: true` → first refused call, {len(ms)} edits:")
    print(f"  p50 {statistics.median(ms):.0f} ms, p99 {p99:.0f} ms, max {ms[-1]:.0f} ms (target ≤ 1000 ms)")


if __name__ == "__main__":
    main()
