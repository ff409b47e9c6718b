"""Benchmark: what the audit ingester costs per access-log line. Prints figures; not a test.

Starts a redis-server, loads bench/latency.py's key and policy, and makes real checks of the bench's
`POST /v1/charges` through the servicer: each answer's dynamic metadata is what Envoy logs under `authz`,
so every line holds a real reservation for settlement to close. The lines (a charge the vendor accepted,
with the fields Envoy logs) are appended to a file in batches, as Envoy's flushes would, and the
pipeline's `run_once` reads, settles and writes each batch into a SQLite file (as `tollgate local`'s
ingester does). Prints the CPU this process spent per line (its SQL thread included; Redis runs outside),
then the same for each step alone: parsing, settlement, the SQL insert.

    python bench/ingest.py [--lines 10000] [--batch 25]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from envoy.service.auth.v3 import external_auth_pb2
from google.protobuf.json_format import MessageToDict

sys.path.insert(0, str(Path(__file__).parent))
from latency import check_request, manifests

from tollgate.audit.ingest import AuditPipeline
from tollgate.audit.record import from_line
from tollgate.audit.settle import apply_settlements
from tollgate.audit.sql import AuditStore, Checkpoint
from tollgate.credentials import CredentialBox, new_box_key
from tollgate.local.processes import start_redis
from tollgate.reconcile.manifests import apply_manifests
from tollgate.store.redis import RedisStore
from tollgate_extauthz.check import Checker
from tollgate_extauthz.lookup import Lookup
from tollgate_extauthz.servicer import AuthorizationServicer

EXTAUTHZ = "envoy.filters.http.ext_authz"


async def access_lines(store: RedisStore, n: int) -> list[str]:
    """n access-log lines of allowed charges, each with a real check's metadata (its own reservation)."""
    box = CredentialBox([new_box_key()])
    token, _ = (await apply_manifests(store, box, manifests()))["bench/k"]
    lookup = Lookup({}, box, timeout_s=1.0, cache_size=100)
    servicer = AuthorizationServicer(Checker(store, box, lookup))
    req = external_auth_pb2.CheckRequest.FromString(check_request(token))
    lines = []
    for i in range(n):
        resp = await servicer.Check(req, None)
        authz = MessageToDict(resp.dynamic_metadata)
        start = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        entry: dict[str, Any] = {
            "start_time": start,
            "method": "POST",
            "path": "/stripe/v1/charges",
            "upstream_path": "/v1/charges",
            "route": "stripe",
            "response_code": 200,
            "response_code_details": "via_upstream",
            "response_flags": "-",
            "duration_ms": 212,
            "bytes_received": 96,
            "bytes_sent": 3120,
            "upstream_host": "10.0.0.7:443",
            "request_id": f"5f1c5a0e-1d2b-4c5a-9e7f-{i:012d}",
            "agent_run_id": "run-42",
            "authz": authz,
            "vendor_response": {
                "id": f"ch_{i:024d}",
                "object": "charge",
                "amount": "2000",
                "currency": "usd",
                "status": "succeeded",
            },
        }
        lines.append(json.dumps(entry, separators=(",", ":")))
    await lookup.close()
    return lines


async def run(redis_url: str, workdir: Path, total: int, batch: int) -> None:
    store = RedisStore.from_url(redis_url, audited=False)
    lines = await access_lines(store, total)
    log_path = workdir / "access.log"
    log_path.touch()
    audit = AuditStore.from_url(f"sqlite:///{workdir / 'audit.db'}", sqlite_lock_wait_s=1.0)
    pipeline = AuditPipeline(log_path, audit, store, ledger=store, approvals=store)
    await pipeline.run_once()  # migrate, load checkpoints, connect

    cpu = time.process_time()
    with log_path.open("a") as f:
        for start in range(0, total, batch):
            f.write("".join(line + "\n" for line in lines[start : start + batch]))
            f.flush()
            await pipeline.run_once()
    per_line = (time.process_time() - cpu) / total * 1e6
    assert audit.count() == total, audit.count()
    print(
        f"{total} lines in batches of {batch}: {per_line:.0f} µs of CPU per line (read, parse, settle, insert)"
    )

    # Each step alone, on the same lines (the rows are new to a second SQLite file).
    batches = [lines[s : s + batch] for s in range(0, total, batch)]
    cpu = time.process_time()
    parsed = [[from_line(line, f"x@{i}") for i, line in enumerate(b)] for b in batches]
    print(f"  parse (from_line)             {(time.process_time() - cpu) / total * 1e6:6.1f} µs per line")
    cpu = time.process_time()
    for rows in parsed:
        await apply_settlements(store, rows)  # already settled above: the same scripts, no change
    print(f"  settle (one pipeline a batch) {(time.process_time() - cpu) / total * 1e6:6.1f} µs per line")
    other = AuditStore.from_url(f"sqlite:///{workdir / 'insert.db'}")
    other.migrate()
    cpu = time.process_time()
    for i, rows in enumerate(parsed):
        other.append(rows, "bench", Checkpoint("bench", i))
    print(f"  SQL insert + checkpoint       {(time.process_time() - cpu) / total * 1e6:6.1f} µs per line")
    other.dispose()
    audit.dispose()
    await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=25, help="lines per flush (500 req/s, 50 ms flushes: 25)")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tollgate-ingest-"))
    redis = start_redis(workdir=workdir)
    try:
        asyncio.run(run(str(redis.url), workdir, args.lines, args.batch))
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
