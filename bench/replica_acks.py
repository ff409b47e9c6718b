"""What `redis.replica_acks=1` costs: reservations per second and their latency on a real Redis Cluster
(3 masters + 3 replicas on loopback), with asynchronous replication and with WAIT 1 after each
reservation. Prints figures; not a test. Needs redis-server and redis-cli.

    python bench/replica_acks.py [--seconds 5] [--callers 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the cluster launcher the tests use

from tests.builders import grant
from tests.support.redis_cluster import start_cluster

from tollgate.store.redis import RedisStore

KEY = "agents/support-bot"


async def run(url: str, acks: int, seconds: float, callers: int) -> dict[str, float]:
    store = RedisStore.from_url(url, timeout_s=2, replica_acks=acks, replica_ack_timeout_ms=1000)
    g = grant()
    await store.put_grant(g)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        while (start := time.perf_counter()) < deadline:
            await store.commit(KEY, g.version, "stripe", f"acks{acks}", 1, 10**15)
            latencies.append((time.perf_counter() - start) * 1000)

    await asyncio.gather(*(caller() for _ in range(callers)))
    await store.close()
    q = statistics.quantiles(latencies, n=100)
    return {
        "commits_per_s": round(len(latencies) / seconds),
        "p50_ms": round(q[49], 3),
        "p99_ms": round(q[98], 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--callers", type=int, default=32)
    args = ap.parse_args()
    cluster = start_cluster(Path(tempfile.mkdtemp(prefix="tollgate-cluster-")))
    try:
        figures = {acks: asyncio.run(run(cluster.url, acks, args.seconds, args.callers)) for acks in (0, 1)}
    finally:
        cluster.stop()
    for acks, f in figures.items():
        print(
            f"replica_acks={acks}: {f['commits_per_s']} reservations/s, p50 {f['p50_ms']:.3f} ms, "
            f"p99 {f['p99_ms']:.3f} ms ({args.callers} callers, one key)"
        )
    print(f"cost of WAIT 1: {figures[1]['commits_per_s'] / figures[0]['commits_per_s']:.2f} × the throughput")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
