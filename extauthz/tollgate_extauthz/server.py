"""The grpc.aio server: Authorization + Health services, graceful shutdown on SIGTERM.

Health has two meanings, by service name. `envoy.service.auth.v3.Authorization` is readiness: SERVING
only while Redis answers a ping (checked every `health_interval_s`), so the Pod's readiness probe and
Envoy's health check take a process that cannot decide out of rotation. The overall status ("") is
liveness: SERVING while the process runs and answers, whatever Redis does, so a Redis outage never
gets ext_authz restarted. Calls that still arrive while NOT_SERVING are denied with 503 (fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

import grpc
from envoy.service.auth.v3 import external_auth_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tollgate.credentials import CredentialBox
from tollgate.errors import StoreUnavailable
from tollgate.settings import Settings
from tollgate.store.base import Lifecycle
from tollgate.store.redis import RedisStore
from tollgate.vendors import default_urls
from tollgate_extauthz.check import Checker
from tollgate_extauthz.lookup import Lookup
from tollgate_extauthz.metrics import Metrics
from tollgate_extauthz.servicer import AuthorizationServicer

log = logging.getLogger("tollgate.extauthz")
SERVICE = "envoy.service.auth.v3.Authorization"


def vendor_urls(settings: Settings) -> dict[str, str]:
    """The configured base URLs, else each vendor's own: settings.py is a leaf that knows no vendor."""
    configured = settings.extauthz.vendor_urls
    return dict(configured) if configured is not None else default_urls()


async def serve(
    settings: Settings, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None
) -> None:
    box = CredentialBox(settings.credentials.plain())
    store = RedisStore.from_url(
        settings.redis.url,
        timeout_s=settings.redis.timeout_ms / 1000,
        replica_acks=settings.redis.replica_acks,
        replica_ack_timeout_ms=settings.redis.replica_ack_timeout_ms,
        autopipeline=settings.redis.autopipeline,
    )
    lookup = Lookup(
        vendor_urls(settings),
        box,
        timeout_s=settings.extauthz.lookup_timeout_s,
        cache_size=settings.extauthz.lookup_cache_size,
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    metrics = Metrics()
    if settings.extauthz.metrics_port:
        metrics.serve(settings.extauthz.metrics_port, settings.extauthz.host)
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
        AuthorizationServicer(
            Checker(store, box, lookup, redact=frozenset(settings.audit.redact_params)),
            metrics,
            frozenset(settings.audit.redact_params),
        ),
        server,
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"{settings.extauthz.host}:{settings.extauthz.port}"
    server.add_insecure_port(address)
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    readiness = Readiness(health_servicer, store, metrics, settings.extauthz.health_interval_s)
    await readiness.probe()  # ready from the first moment Redis answers, not one interval later
    # Everything loaded so far (modules, settings, scripts) lives as long as the process: keep it out of
    # the collector's reach, so a full collection walks only what checks allocate and never pauses a
    # check for the whole heap.
    gc.collect()
    gc.freeze()
    log.info("ext_authz listening on %s (redis %s)", address, _redacted(settings.redis.url))

    stop = stop or asyncio.Event()
    watcher = asyncio.create_task(readiness.run(stop))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests)
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    await stop.wait()
    watcher.cancel()
    # Tell Envoy's health checks first, then let in-flight checks finish.
    await health_servicer.enter_graceful_shutdown()
    metrics.ready.set(0)
    await server.stop(grace=5)
    await lookup.close()
    await store.close()


class Readiness:
    """Sets the Authorization service SERVING while Redis answers a ping, NOT_SERVING while it does not."""

    def __init__(
        self,
        health_servicer: health.aio.HealthServicer,
        store: Lifecycle,
        metrics: Metrics,
        interval_s: float,
    ) -> None:
        self._health = health_servicer
        self._store = store
        self._metrics = metrics
        self._interval_s = interval_s
        self.serving: bool | None = None  # None until the first probe

    async def probe(self) -> bool:
        try:
            await self._store.ping()
        except StoreUnavailable as exc:
            await self._set(False, str(exc))
        except Exception as exc:  # anything else is as unready: the watcher must outlive it
            await self._set(False, f"{type(exc).__name__}: {exc}")
        else:
            await self._set(True, "")
        return bool(self.serving)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)
            if not stop.is_set():
                await self.probe()

    async def _set(self, serving: bool, why: str) -> None:
        if serving == self.serving:
            return
        self.serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self._health.set(SERVICE, status)
        self._metrics.ready.set(1 if serving else 0)
        if serving:
            log.info("ready: Redis answers; %s is SERVING", SERVICE)
        else:
            log.warning("not ready: %s; %s is NOT_SERVING (calls are denied with 503)", why, SERVICE)


def _redacted(url: str) -> str:
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
