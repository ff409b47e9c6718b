"""`tollgate local` watches every process it starts: SIGKILL one under load and it is restarted on the
same port, and calls pass again; a port already taken fails the start with a message naming it."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.faulty import FaultyUpstream
from tests.support.gateway_faults import PAYOUT_MICRO_USD, Agent, deploy, eventually

from tollgate.local.gateway import GatewayOptions, LocalGateway
from tollgate.local.processes import ManagedProcess, ProcessError


@pytest.fixture(scope="module")
def vendor() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def gateway_options(vendor: FaultyUpstream) -> dict[str, Any]:
    return {"upstreams": {"stripe": vendor.url}, "persist": True}


class Load:
    """Payouts and reads from a few threads until stopped; counts what passed."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.paid = 0  # payouts answered 200: each is $10 the vendor ran
        self.unpaid = 0  # payouts without a 200 (the moment a process is down): the vendor may have run some
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(3)]

    def _run(self, i: int) -> None:
        while not self._stop.is_set():
            try:
                status = self.agent.payout(timeout=5)[0] if i == 0 else self.agent.read()
            except Exception:
                status = None
            with self._lock:
                if i == 0:
                    self.paid += status == 200
                    self.unpaid += status != 200
            time.sleep(0.01)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


def process(gateway: LocalGateway, name: str) -> ManagedProcess:
    (proc,) = [p for p in gateway.processes() if p.name == name]
    return proc


@pytest.mark.parametrize("name", ["redis", "extauthz", "envoy", "audit"])
def test_a_process_killed_under_load_is_restarted_and_calls_pass_again(
    gateway: LocalGateway, vendor: FaultyUpstream, name: str
) -> None:
    vendor.set("answer", 200)
    agent = deploy(gateway, cap_usd="100000")
    with Load(agent) as load:
        eventually(lambda: load.paid >= 3, what="load running")
        proc = process(gateway, name)
        old_pid = proc.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        eventually(lambda: proc.running() and proc.pid != old_pid, timeout=30, what=f"{name} restarted")
        paid_before = load.paid
        eventually(lambda: load.paid >= paid_before + 3, timeout=30, what="payouts passing again")
    assert proc.restarts >= 1
    # A restarted Redis is another server (a new run id): the audit rebuilds spend from the ledger once
    # the calls in flight have finished, and money calls answer 503 until then. That sweep may come just
    # after the load's first payouts passed, so the last payout waits for it; reads never wait.
    tries: list[int] = []

    def a_payout_passes() -> bool:
        tries.append(agent.payout()[0])
        return tries[-1] == 200

    eventually(a_payout_passes, timeout=30, what="a payout passing after the load")
    assert agent.read() == 200
    # Nothing acknowledged was lost with the process: every payout that passed is counted, and no more
    # than those plus the ones whose outcome the agent never learnt (a call in flight through a killed
    # Envoy is never logged: its reservation stays counted).
    gateway.wait_audited()
    paid = load.paid + 1
    unpaid = load.unpaid + len(tries) - 1
    assert paid * PAYOUT_MICRO_USD <= agent.spent() <= (paid + unpaid) * PAYOUT_MICRO_USD


def test_a_start_whose_port_is_taken_fails_naming_the_port(vendor: FaultyUpstream, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        gw = LocalGateway(
            GatewayOptions(upstreams={"stripe": vendor.url}, workdir=tmp_path, listen_port=port)
        )
        with pytest.raises(ProcessError, match=f"port {port}"):
            gw.start()
    assert not any(p.running() for p in gw.processes())


def test_readiness_proves_the_listener_is_the_process_it_started(tmp_path: Path) -> None:
    # Another process holds the port; a start that skipped the free-port check must still not be fooled.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        proc = ManagedProcess("sleeper", ["sleep", "30"], log_path=tmp_path / "s.log")
        proc.start()
        proc.owns_ports = (port,)
        try:
            with pytest.raises(ProcessError, match=f"not the process listening on port {port}"):
                proc.wait_tcp(port, timeout=2)
        finally:
            proc.stop()
