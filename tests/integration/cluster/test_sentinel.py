"""Sentinel, live: a master, its replica and three Sentinels on loopback, the store on
`redis+sentinel://…/tollgate` with replica_acks=1. Calls pass; the master is killed under load; calls
fail closed until Sentinel has promoted the replica (and, with replica_acks, until a replica is back in
sync); then they pass again, and no reservation that passed was lost. Then the same through the
gateway: ext_authz on TOLLGATE_REDIS__URL=redis+sentinel://… with payouts racing a cap across the
failover, which ends exactly at the cap."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from tests.builders import grant
from tests.support.ci import required
from tests.support.faulty import FaultyUpstream
from tests.support.gateway_faults import deploy, eventually, today
from tests.support.redis_sentinel import MASTER_NAME, Sentinels, start_sentinels

from tollgate.local.gateway import GatewayOptions, LocalGateway
from tollgate.local.processes import LOOPBACK, ProcessError, redis_server_binary
from tollgate.store import keys
from tollgate.store.redis import RedisStore

from .test_failover import KEY, Load, _until

CALLERS = 8
CAP_PAYOUTS = 40  # $10 payouts against a $400 cap


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[Sentinels]:
    with required("redis-server for Sentinel", ProcessError):
        redis_server_binary()
    s = start_sentinels(tmp_path)
    try:
        yield s
    finally:
        s.stop()


def _stalled(s: Sentinels, log: Path, seen: list[tuple[float, int | None]], since: float) -> str:
    """What a stalled failover looked like: the answers since the old master came back, why ext_authz
    refused (its log's last details), and what each Redis and Sentinel says about replication."""
    after = Counter(status for at, status in seen if at > since)
    details = Counter(
        line.partition("detail=")[2].strip()[:120]
        for line in log.read_text().splitlines()[-200:]
        if "detail=" in line
    )
    nodes = [_ask(proc.name, proc.port, _replication) for proc in (s.master, s.replica)]
    views = [
        _ask(x.name, x.port, lambda r: f"master at {r.sentinel_get_master_addr_by_name(MASTER_NAME)}")
        for x in s.sentinels
    ]
    return (
        f"no payout reached the cap within 60 s of the old master's return: answers since {dict(after)}; "
        f"ext_authz's last refusals {dict(details)}; {'; '.join(nodes)}; {'; '.join(views)}"
    )


def _replication(r: redis.Redis) -> str:
    info = r.info("replication")
    return f"role={info.get('role')} link={info.get('master_link_status')} replicas={info.get('connected_slaves')}"


def _ask(name: str, port: int | None, question: Callable[[redis.Redis], str]) -> str:
    """One node's answer for a diagnosis, or why it gave none."""
    try:
        with redis.Redis(host=LOOPBACK, port=port or 0, decode_responses=True, socket_timeout=2) as r:
            return f"{name}:{port} {question(r)}"
    except redis.RedisError as e:
        return f"{name}:{port} {type(e).__name__}: {e}"


def _master_port(s: Sentinels) -> int | None:
    with redis.Redis(host=LOOPBACK, port=s.sentinels[0].port, decode_responses=True) as r:
        addr = r.sentinel_get_master_addr_by_name(MASTER_NAME)
    return int(addr[1]) if addr else None


async def test_a_killed_master_fails_calls_closed_until_sentinel_promotes_its_replica_and_none_is_lost(
    sentinels: Sentinels,
) -> None:
    store = RedisStore.from_url(
        sentinels.url, timeout_s=2, replica_acks=1, replica_ack_timeout_ms=1000, audited=False
    )
    g = grant()
    await store.put_grant(g)
    load = Load(store, g.version)
    tasks = [asyncio.create_task(load.caller()) for _ in range(CALLERS)]
    old = sentinels.master
    try:
        await _until(lambda: len(load.acked) >= 200, 30, "200 calls passed through Sentinel")
        assert load.refused == []
        killed = time.monotonic()
        sentinels.kill(old)
        await _until(lambda: load.refused and load.refused[-1] > killed, 20, "refusing once the master died")
        await _until(lambda: _master_port(sentinels) == sentinels.replica.port, 30, "Sentinel promoted", load)
        promoted = time.monotonic()
        # With replica_acks the promoted master needs a replica in sync: the old one comes back as one.
        sentinels.master = sentinels.restart(old, "--replicaof", LOOPBACK, str(sentinels.replica.port))
        await _until(lambda: load.passed_since(killed) >= 100, 30, "passing again after the failover", load)
    finally:
        load.running = False
        await asyncio.gather(*tasks)

    assert load.other == []  # each call passed with a reservation or was refused
    first_refusal = min(at for at in load.refused if at > killed)
    back = min(at for at, _ in load.acked if at > first_refusal)
    with redis.Redis(host=LOOPBACK, port=sentinels.replica.port, decode_responses=True) as r:
        held = [r.exists(keys.reservation(KEY, rid)) for at, rid in load.acked if at < killed]
    print(
        f"\nSentinel failover: {len(load.acked)} passed, {len(load.refused)} refused; promoted "
        f"{promoted - killed:.2f}s after the kill, calls refused for {back - killed:.2f}s; "
        f"lost reservations (cap overshoot, micro-USD): {held.count(0)}"
    )
    assert held and held.count(0) == 0  # overshoot: 0
    await store.close()


def test_through_the_gateway_on_sentinel_money_calls_fail_closed_during_a_failover_and_the_cap_is_exact(
    sentinels: Sentinels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ext_authz as the chart configures it for Sentinel: TOLLGATE_REDIS__URL=redis+sentinel://…, replica_acks.
    monkeypatch.setenv("TOLLGATE_REDIS__REPLICA_ACKS", "1")
    monkeypatch.setenv("TOLLGATE_REDIS__REPLICA_ACK_TIMEOUT_MS", "500")
    monkeypatch.setenv("TOLLGATE_REDIS__TIMEOUT_MS", "2000")
    seen: list[tuple[float, int | None]] = []
    with (
        FaultyUpstream() as vendor,
        LocalGateway(
            GatewayOptions(
                workdir=tmp_path / "gateway",
                redis_url=sentinels.url,
                upstreams={"stripe": vendor.url},
                extauthz_timeout_ms=5000,
                supervise=False,
            )
        ) as gw,
    ):
        agent = deploy(gw, cap_usd=str(CAP_PAYOUTS * 10))

        capped = threading.Event()

        def payer() -> None:
            while not capped.is_set():
                status = agent.payout()[0]
                seen.append((time.monotonic(), status))
                if status == 402:
                    capped.set()

        with ThreadPoolExecutor(4) as pool:
            payers = [pool.submit(payer) for _ in range(4)]
            eventually(lambda: sum(s == 200 for _, s in seen) >= 10, 20, "10 payouts passed")
            killed = time.monotonic()
            sentinels.kill(sentinels.master)
            eventually(lambda: _master_port(sentinels) == sentinels.replica.port, 30, "Sentinel promoted")
            old = sentinels.master
            sentinels.master = sentinels.restart(old, "--replicaof", LOOPBACK, str(sentinels.replica.port))
            restarted = time.monotonic()
            stalled = not capped.wait(60)
            capped.set()  # a stalled failover: stop the payers, then say where it stalled instead of hanging
            for p in payers:
                p.result(timeout=30)
            if stalled:
                pytest.fail(_stalled(sentinels, gw.workdir / "extauthz.log", seen, restarted))
        gw.wait_audited()
        with redis.Redis(host=LOOPBACK, port=sentinels.replica.port, decode_responses=True) as r:
            spent = int(r.get(keys.spend(agent.key_id, "stripe", today())) or 0)

    after = [s for at, s in seen if at > killed]
    print(
        f"\nthrough the gateway on Sentinel: {after.count(503)} payouts refused (503) during the failover, "
        f"{sum(s == 200 for _, s in seen)} paid, then the cap (402)"
    )
    assert {s for _, s in seen} <= {200, 402, 503}  # a pass, the cap, or fail closed: nothing else
    assert 503 in after and 200 in after[after.index(503) :]  # refused during the failover, then passing
    assert vendor.received == sum(s == 200 for _, s in seen) == CAP_PAYOUTS  # overshoot: 0
    assert spent == CAP_PAYOUTS * 10_000_000
