"""The floors Tollgate's checks/s is measured against (bench/latency.py runs them; not a test).

Two Authorization servers as lean as Python gRPC allows, on the same grpc.aio server options and event
loop as ext_authz, so the only difference left is Tollgate's own work:

  bare     Check answers OK at once
  evalsha  Check runs one EVALSHA of a trivial script (redis.asyncio, the store's client), then answers OK

    python bench/floor.py --mode evalsha --port 9101 --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio

import grpc
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from google.rpc import code_pb2, status_pb2

from tollgate.store.connection import connect

OK = external_auth_pb2.CheckResponse(
    status=status_pb2.Status(code=code_pb2.OK), ok_response=external_auth_pb2.OkHttpResponse()
)
TRIVIAL = "return 1"


class Bare(external_auth_pb2_grpc.AuthorizationServicer):
    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        return OK


class OneEvalsha(external_auth_pb2_grpc.AuthorizationServicer):
    def __init__(self, redis_url: str) -> None:
        self._script = connect(redis_url).register_script(TRIVIAL)

    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        await self._script(keys=["tg:{bench}:floor"], args=[1])
        return OK


async def serve(mode: str, port: int, redis_url: str) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])  # as ext_authz's server
    servicer = Bare() if mode == "bare" else OneEvalsha(redis_url)
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["bare", "evalsha"], required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()
    try:
        import uvloop
    except ImportError:  # as ext_authz: uvloop when installed
        asyncio.run(serve(args.mode, args.port, args.redis_url))
    else:
        uvloop.run(serve(args.mode, args.port, args.redis_url))


if __name__ == "__main__":
    main()
