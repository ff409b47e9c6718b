"""Sentinel, live: a master, its replica and three Sentinels on loopback, the store on
`redis+sentinel://…/tollgate` with replica_acks=1. Calls pass; the master is killed under load; calls
fail closed until Sentinel has promoted the replica (and, with replica_acks, until a replica is back in
sync); then they pass again, and no reservation that passed was lost."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from tests.builders import grant
from tests.support.redis_sentinel import MASTER_NAME, Sentinels, start_sentinels

from tollgate.local.processes import LOOPBACK, ProcessError, redis_server_binary
from tollgate.store import keys
from tollgate.store.redis import RedisStore

from .test_failover import KEY, Load, _until

CALLERS = 8


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[Sentinels]:
    try:
        redis_server_binary()
    except ProcessError as e:
        if os.environ.get("CI") == "true":  # never skipped in CI
            raise
        pytest.skip(f"Sentinel test skipped: {e}")
    s = start_sentinels(tmp_path)
    try:
        yield s
    finally:
        s.stop()


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
        await _until(lambda: len(load.acked) >= 200, 10, "200 calls passed through Sentinel")
        assert load.refused == []
        killed = time.monotonic()
        sentinels.kill(old)
        await _until(lambda: load.refused and load.refused[-1] > killed, 10, "refusing once the master died")
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
