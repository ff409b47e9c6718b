"""Benchmark: what the idempotency check, the loop breaker and a shared budget add to commit.lua. Prints
figures; not a test.

Starts redis-server and times sequential commits (one Redis round trip each) four ways: the cap alone,
with an Idempotency-Key (a new key per call, as stripe-python sends), with both and a loop breaker, and
the cap alone for a key under a SpendBudget (its cap checked and charged in the same script).

    python bench/commit_limits.py [--calls 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.builders import grant, spend_budget

from tollgate.local.processes import start_redis
from tollgate.store.base import NO_LIMITS, BudgetCharge, Limits
from tollgate.store.redis import RedisStore


async def run(url: str, calls: int) -> None:
    # Unaudited: grants are marked as written, so every commit reserves (an audited store without its
    # ingester would answer "not yet rebuilt from the ledger" before doing any of the work timed here).
    store = RedisStore.from_url(url, audited=False)
    g = grant()
    await store.put_grant(g)
    b = grant(key_id="agents/budgeted", budget=spend_budget(dailyCapUsd="1000000000"), token="tgk_b")
    await store.put_grant(b)
    charge = BudgetCharge("agents/support", "bench", 10**15)
    cases = {
        "cap only": lambda i: NO_LIMITS,
        "+ idempotency key": lambda i: Limits(idempotency_key=f"ik_{i}", fingerprint="fp"),
        "+ idempotency key + loop breaker": lambda i: Limits(
            idempotency_key=f"ik_lb_{i}", fingerprint="fp", breaker_calls=10**6, breaker_window_ms=60_000
        ),
    }
    for name, limits in [*cases.items(), ("cap + shared budget", lambda i: NO_LIMITS)]:
        key, budget = (b, charge) if name == "cap + shared budget" else (g, None)
        times = []
        for i in range(calls):
            t = time.perf_counter()
            c = await store.commit(
                key.key_id,
                key.version,
                "stripe",
                "bench",
                1,
                10**15,
                at_ms=i,
                limits=limits(i),
                budget=budget,
            )
            times.append(time.perf_counter() - t)
            assert c.reservation_id, c
        times.sort()
        p50, p99 = statistics.median(times), times[int(len(times) * 0.99)]
        print(f"{name:34s} p50 {p50 * 1e3:.3f} ms   p99 {p99 * 1e3:.3f} ms")
    await store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=5000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_redis(workdir=Path(tmp))
        assert proc.url is not None
        try:
            asyncio.run(run(proc.url, args.calls))
        finally:
            proc.stop()


if __name__ == "__main__":
    main()
