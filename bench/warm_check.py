"""Benchmark: what one warm check costs ext_authz's own Python, without gRPC or Envoy. Prints; not a test.

Starts a redis-server, loads bench/latency.py's key and policy, and calls the servicer's Check in this
process, `--concurrency` calls at a time, with the bench's CheckRequest: the same code path as a real
check from the proto to the CheckResponse, minus grpcio's own work. With `--grpc`, the servicer is served
on a grpc.aio server in this process instead, and h2load sends the checks. It prints the CPU time this
process spent per check (Redis and h2load run in their own processes, so their time is not counted):
a figure that other work on the same cores moves far less than checks/s. With `--profile`, the
functions that cost most (cProfile: compare shares within one profile).

    python bench/warm_check.py [--checks 20000] [--concurrency 32] [--grpc] [--profile 25] [--no-autopipeline]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc

sys.path.insert(0, str(Path(__file__).parent))
from floor import OneEvalsha
from latency import check_request, manifests

from tollgate.credentials import CredentialBox, new_box_key
from tollgate.local.processes import free_port, start_redis
from tollgate.reconcile.manifests import apply_manifests
from tollgate.store.redis import RedisStore
from tollgate_extauthz.check import Checker
from tollgate_extauthz.lookup import Lookup
from tollgate_extauthz.servicer import AuthorizationServicer


async def run(
    redis_url: str,
    checks: int,
    concurrency: int,
    profile: int,
    autopipeline: bool,
    out: str | None,
    grpc_port: int | None,
    floor: bool,
) -> None:
    box = CredentialBox([new_box_key()])
    store = RedisStore.from_url(redis_url, audited=False, autopipeline=autopipeline)
    token, _ = (await apply_manifests(store, box, manifests()))["bench/k"]
    lookup = Lookup({}, box, timeout_s=1.0, cache_size=100)
    servicer: Any = AuthorizationServicer(Checker(store, box, lookup))
    if floor:  # the yardstick: bench/floor.py's servicer with one EVALSHA, on the same Redis
        servicer = OneEvalsha(redis_url)
    req = external_auth_pb2.CheckRequest.FromString(check_request(token))
    ctx: object = None

    async def h2load(n: int) -> None:
        """n checks through a real grpc.aio server in this process, sent by h2load from outside."""
        msg = check_request(token)
        body = Path(tempfile.mkdtemp(prefix="tollgate-warm-")) / "check.bin"
        body.write_bytes(b"\x00" + struct.pack(">I", len(msg)) + msg)
        url = f"http://127.0.0.1:{grpc_port}/envoy.service.auth.v3.Authorization/Check"
        streams = str(max(1, concurrency // 2))
        argv = ["-n", str(n), "-c", "2", "-m", streams, "-t", "1", "-d", str(body)]
        headers = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
        proc = await asyncio.create_subprocess_exec(
            "h2load", *argv, *headers, url, stdout=asyncio.subprocess.PIPE
        )
        report = (await proc.communicate())[0].decode()
        if f"{n} succeeded, 0 failed" not in report:
            raise SystemExit(f"h2load failed:\n{report}")

    async def batch(n: int) -> None:
        if grpc_port is not None:
            return await h2load(n)
        left = n

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                resp = await servicer.Check(req, ctx)
                assert resp.HasField("ok_response"), resp

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    if grpc_port is not None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])  # as ext_authz's server
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(servicer, server)
        server.add_insecure_port(f"127.0.0.1:{grpc_port}")
        await server.start()
    await batch(1000)  # warm: grant cached, scripts loaded, connections open
    gc.collect()
    prof = cProfile.Profile() if profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    await batch(checks)
    if prof:
        prof.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{checks} warm checks, {concurrency} at a time: {cpu / checks * 1e6:.1f} µs of this process's CPU "
        f"per check, {checks / wall:.0f} checks/s in one process "
        + ("(gRPC included, h2load outside)" if grpc_port is not None else "(gRPC not included)")
    )
    if (pipe := store._commit_pipelined) is not None and not floor:
        print(f"auto-pipelining: {pipe.calls / max(1, pipe.batches):.1f} commits per Redis round trip")
    if prof:
        if out:
            prof.dump_stats(out)
        pstats.Stats(prof).sort_stats("tottime").print_stats(profile)
    await lookup.close()
    await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--profile", type=int, default=0, help="print the N costliest functions (cProfile)")
    ap.add_argument("--profile-out", help="also write the cProfile stats to this file (pstats, snakeviz)")
    ap.add_argument("--no-autopipeline", action="store_true", help="one round trip per commit")
    ap.add_argument(
        "--grpc", action="store_true", help="serve Check on a grpc.aio server here and drive it with h2load"
    )
    ap.add_argument("--floor", action="store_true", help="bench/floor.py's one-EVALSHA servicer instead")
    args = ap.parse_args()
    port = free_port() if args.grpc else None
    how = (
        args.checks,
        args.concurrency,
        args.profile,
        not args.no_autopipeline,
        args.profile_out,
        port,
        args.floor,
    )
    redis = start_redis(workdir=Path(tempfile.mkdtemp(prefix="tollgate-warm-")))
    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(run(str(redis.url), *how))
        else:
            uvloop.run(run(str(redis.url), *how))
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
