"""The audit store is the ledger, Redis its fast copy: when Redis loses its data, each key's spend comes
back from the audit before any money call passes (503 tollgate_unavailable until then; reads pass), a
call in flight at the moment of the loss included. And settlement never waits for the SQL store."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from tests.support.faulty import FaultyUpstream
from tests.support.gateway_faults import Agent, deploy, eventually, manifests

from tollgate.local.gateway import GatewayOptions, LocalGateway


@pytest.fixture(scope="module")
def vendor() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as up:
        yield up


def fields(vendor: FaultyUpstream) -> dict[str, Any]:
    return {"upstreams": {"stripe": vendor.url}, "persist": True}


@pytest.fixture(scope="module")
def gateway_options(vendor: FaultyUpstream) -> dict[str, Any]:
    return fields(vendor)


def options(vendor: FaultyUpstream, workdir: Path) -> GatewayOptions:
    """The module's gateway again, on a folder a test restarts it from."""
    return GatewayOptions(workdir=workdir, **fields(vendor))


@pytest.fixture
def agent(gateway: LocalGateway, vendor: FaultyUpstream) -> Agent:
    vendor.set("answer", 200)
    return deploy(gateway)


def reapply(gateway: LocalGateway, agent: Agent) -> None:
    """What the operator's resync (or a local-mode restart) does after a flush: the grants come back,
    with the tokens agents already hold."""
    tokens = gateway.apply(manifests(agent.key_id.partition("/")[2]))
    assert tokens[agent.key_id] == agent.token


def test_after_redis_loses_its_data_spend_comes_back_from_the_audit_and_the_next_payout_is_402(
    gateway: LocalGateway, agent: Agent, vendor: FaultyUpstream
) -> None:
    before = vendor.received
    assert [agent.payout()[0] for _ in range(4)] == [200] * 4
    vendor.set("answer", 200, delay_s=2.5)  # the fifth is still at the vendor when Redis loses its data
    slow: list[int | None] = []
    in_flight = threading.Thread(target=lambda: slow.append(agent.payout()[0]))
    in_flight.start()
    eventually(lambda: vendor.received - before == 5, what="the fifth payout reached the vendor")
    gateway.stop_auditor()
    with redis.Redis.from_url(gateway.redis_url) as r:
        r.flushall()  # a new, empty Redis: a rescheduled pod without persistence, a stale failover
    reapply(gateway, agent)
    status, _ = agent.payout()
    assert status == 503  # no money call before the spend is back ...
    assert agent.read() == 200  # ... while reads pass
    gateway.start_auditor()
    gateway.wait_ledger([agent.key_id])
    in_flight.join()
    assert slow == [200]
    assert agent.spent() == 50_000_000
    vendor.set("answer", 200)
    assert agent.payout()[0] == 402
    assert vendor.received - before == 5  # overshoot: 0 cents


def test_a_local_mode_restart_keeps_tokens_and_spend_and_rebuilds_spend_redis_lost(
    vendor: FaultyUpstream, tmp_path: Path
) -> None:
    vendor.set("answer", 200)
    with LocalGateway(options(vendor, tmp_path)) as gw:
        agent = deploy(gw)
        assert [agent.payout()[0] for _ in range(5)] == [200] * 5
        gw.wait_audited()
    name = agent.key_id.partition("/")[2]
    with LocalGateway(options(vendor, tmp_path)) as gw:  # a plain restart: Redis kept its data
        assert gw.apply(manifests(name))[agent.key_id] == agent.token
        again = Agent(gw, agent.key_id, agent.token)
        assert again.spent() == 50_000_000 and again.payout()[0] == 402
    for leftover in ("appendonlydir", "dump.rdb"):  # now Redis's data is gone; the audit database is not
        shutil.rmtree(tmp_path / leftover, ignore_errors=True)
        (tmp_path / leftover).unlink(missing_ok=True)
    with LocalGateway(options(vendor, tmp_path)) as gw:
        assert gw.apply(manifests(name))[agent.key_id] == agent.token
        again = Agent(gw, agent.key_id, agent.token)
        assert again.spent() == 50_000_000
        assert again.payout()[0] == 402
    assert vendor.received >= 5


def test_refused_calls_are_released_while_the_audit_database_is_locked_behind_a_backlog(
    gateway: LocalGateway, agent: Agent, vendor: FaultyUpstream
) -> None:
    assert [agent.payout()[0] for _ in range(2)] == [200] * 2  # $20 of $50 spent
    gateway.wait_audited()
    lock = sqlite3.connect(gateway.workdir / "audit.db", timeout=0.1)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        backlog_from = gateway.access_log.stat().st_size
        with httpx.Client(timeout=10) as client, ThreadPoolExecutor(8) as pool:
            url = f"{gateway.base_url('stripe')}/v1/balance"
            auth = {"authorization": f"Bearer {agent.token}"}
            list(pool.map(lambda _: client.get(url, headers=auth).status_code, range(1400)))
        vendor.set("answer", 402)
        assert [agent.payout()[0] for _ in range(5)] == [402] * 5  # refused by the vendor: no money moved
        eventually(lambda: agent.open_reservations() == 0, timeout=5, what="refusals released")
        assert gateway.access_log.stat().st_size - backlog_from > 1 << 20  # behind ~1 MiB of log
        assert agent.spent() == 20_000_000
        vendor.set("answer", 200)
        assert [agent.payout()[0] for _ in range(3)] == [200] * 3  # a legitimate payout is not refused
        # An ingester that starts while its database is unavailable keeps running and keeps settling.
        gateway.stop_auditor()
        gateway.start_auditor()
        vendor.set("answer", 402)
        assert agent.payout()[0] == 402
        eventually(lambda: agent.open_reservations() == 0, timeout=5, what="released by the new ingester")
        assert gateway.auditor is not None and gateway.auditor.running()
    finally:
        lock.rollback()
        lock.close()
    gateway.wait_audited(timeout_s=60)  # and every row arrives once the database is back
    assert agent.spent() == 50_000_000


def test_a_redis_restarted_on_stale_data_gets_its_spend_back_from_the_ledger(
    gateway: LocalGateway, agent: Agent, vendor: FaultyUpstream
) -> None:
    # A failover to a replica that is behind, as a restart on an older copy of the append-only file.
    assert gateway.redis is not None
    assert [agent.payout()[0] for _ in range(2)] == [200] * 2
    gateway.wait_audited()
    stale = gateway.workdir / "stale-aof"
    shutil.copytree(gateway.workdir / "appendonlydir", stale)
    assert [agent.payout()[0] for _ in range(3)] == [200] * 3
    gateway.wait_audited()
    gateway.redis.stop()
    shutil.rmtree(gateway.workdir / "appendonlydir")
    stale.rename(gateway.workdir / "appendonlydir")
    gateway.redis.restart()
    # The audit notices another Redis server within a sweep and gives it the ledger's spend.
    before = vendor.received
    eventually(lambda: agent.spent() == 50_000_000, what="the spend back from the ledger")
    gateway.wait_ledger([agent.key_id])
    # ext_authz's pooled connections to the old server fail once each (503, retry later): then 402.
    assert eventually(lambda: (s := agent.payout()[0]) != 503 and s, what="a decided payout") == 402
    assert vendor.received == before
