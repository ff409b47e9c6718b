"""The grpc.aio server: Authorization + Health services, graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import grpc
from envoy.service.auth.v3 import external_auth_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tollgate.credentials import CredentialBox
from tollgate.settings import Settings
from tollgate.store.redis import RedisStore
from tollgate_extauthz.check import Checker
from tollgate_extauthz.lookup import Lookup
from tollgate_extauthz.metrics import Metrics
from tollgate_extauthz.servicer import AuthorizationServicer

log = logging.getLogger("tollgate.extauthz")
SERVICE = "envoy.service.auth.v3.Authorization"


async def serve(
    settings: Settings, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None
) -> None:
    box = CredentialBox(settings.credentials.plain())
    store = RedisStore.from_url(settings.redis.url, timeout_s=settings.redis.timeout_ms / 1000)
    lookup = Lookup(
        settings.extauthz.vendor_urls,
        box,
        timeout_s=settings.extauthz.lookup_timeout_s,
        cache_size=settings.extauthz.lookup_cache_size,
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    metrics = Metrics()
    if settings.extauthz.metrics_port:
        metrics.serve(settings.extauthz.metrics_port, settings.extauthz.host)
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
        AuthorizationServicer(Checker(store, box, lookup), metrics), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"{settings.extauthz.host}:{settings.extauthz.port}"
    server.add_insecure_port(address)
    await server.start()
    await health_servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    log.info("ext_authz listening on %s (redis %s)", address, _redacted(settings.redis.url))

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests)
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    await stop.wait()
    # Tell Envoy's health checks first, then let in-flight checks finish.
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=5)
    await lookup.close()
    await store.close()


def _redacted(url: str) -> str:
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
