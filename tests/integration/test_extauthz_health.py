"""ext_authz's gRPC health means something: the Authorization service (readiness: the Pod's probe and
Envoy's health check) is NOT_SERVING while Redis cannot be reached and SERVING again once it can; the
overall status (liveness) stays SERVING throughout, and a Check that still arrives is denied with 503.
A real ext_authz process against a real redis-server that is stopped and started again."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from envoy.service.auth.v3 import external_auth_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tests.unit.extauthz.test_request_response import check_request

from tollgate.credentials import new_box_key
from tollgate.local.processes import ManagedProcess, free_port, start_process, start_redis

SERVICE = "envoy.service.auth.v3.Authorization"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ExtAuthz:
    def __init__(self, proc: ManagedProcess, port: int, metrics_port: int) -> None:
        self.proc, self.metrics_port = proc, metrics_port
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.auth = external_auth_pb2_grpc.AuthorizationStub(self.channel)

    def status(self, service: str) -> int:
        return int(self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status)

    def becomes(self, status: int, timeout: float = 10.0) -> float:
        """Seconds until the Authorization service reports `status`."""
        started = time.monotonic()
        while self.status(SERVICE) != status:
            assert time.monotonic() - started < timeout, (
                f"still {self.status(SERVICE)}:\n{self.proc.log_tail()}"
            )
            time.sleep(0.02)
        return time.monotonic() - started

    def ready_gauge(self) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics").text
        (line,) = [x for x in text.splitlines() if x.startswith("tollgate_ready ")]
        return float(line.split()[1])


@pytest.fixture
def redis_port() -> int:
    return free_port()


@pytest.fixture
def extauthz(tmp_path: Path, redis_port: int) -> Iterator[ExtAuthz]:
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "TOLLGATE_REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
        "TOLLGATE_REDIS__TIMEOUT_MS": "200",
        "TOLLGATE_EXTAUTHZ__PORT": str(port),
        "TOLLGATE_EXTAUTHZ__METRICS_PORT": str(metrics_port),
        "TOLLGATE_EXTAUTHZ__HEALTH_INTERVAL_S": "0.2",
        "TOLLGATE_CREDENTIALS__KEYS": new_box_key(),
    }
    proc = start_process(
        "extauthz", [sys.executable, "-m", "tollgate_extauthz"], env=env, ready_port=port, log_dir=tmp_path
    )
    client = ExtAuthz(proc, port, metrics_port)
    try:
        yield client
    finally:
        client.channel.close()
        proc.stop()


def test_readiness_follows_redis_and_liveness_stays_serving(
    tmp_path: Path, redis_port: int, extauthz: ExtAuthz
) -> None:
    # Started before Redis: alive, not ready.
    assert extauthz.status("") == SERVING
    extauthz.becomes(NOT_SERVING)
    assert extauthz.ready_gauge() == 0

    redis = start_redis(port=redis_port, workdir=tmp_path / "redis")
    try:
        took = extauthz.becomes(SERVING)
        print(f"\nready {took * 1000:.0f} ms after Redis came up")
        assert extauthz.ready_gauge() == 1
    finally:
        redis.stop()

    took = extauthz.becomes(NOT_SERVING)
    print(f"not ready {took * 1000:.0f} ms after Redis went away")
    assert extauthz.status("") == SERVING  # liveness is about the process: no restart for a Redis outage
    assert extauthz.ready_gauge() == 0

    # Envoy may still send a Check (every host unhealthy puts its cluster in panic): it fails closed.
    answer = extauthz.auth.Check(
        check_request("/stripe/v1/balance", method="GET", authorization="Bearer tgk_whatever"), timeout=5
    )
    assert answer.denied_response.status.code == 503
    assert "tollgate_unavailable" in answer.denied_response.body

    redis = start_redis(port=redis_port, workdir=tmp_path / "redis")
    try:
        extauthz.becomes(SERVING)
    finally:
        redis.stop()


def test_an_unknown_service_name_is_not_found(extauthz: ExtAuthz) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        extauthz.status("no.such.Service")
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
