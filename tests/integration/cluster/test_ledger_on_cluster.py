"""The ledger on a Redis Cluster: when the cluster loses data (a FLUSHALL, or a master replaced by a
replica that lagged), money calls wait until the audit ingester has rebuilt the key's spend, and the cap
then holds exactly. The ingester notices a failover because the run ids of all masters are its check,
not only the run id of the master that holds its own marker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot
from tests.support.faulty import FaultyUpstream
from tests.support.gateway_faults import Agent, eventually, manifests, today
from tests.support.redis_cluster import RedisCluster, start_cluster

from tollgate.local.gateway import GatewayOptions, LocalGateway
from tollgate.store import keys
from tollgate.store.redis import RedisStore

from .conftest import cluster_or_skip


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    cluster_or_skip()  # its own cluster: a test here kills one of its masters
    c = start_cluster(tmp_path / "cluster")
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def vendor() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as up:
        yield up


def client(cluster: RedisCluster) -> redis.RedisCluster:
    live = next(p for p in cluster.ports if p not in cluster.stopped)
    return redis.RedisCluster(host="127.0.0.1", port=live, decode_responses=True)


def gateway(cluster: RedisCluster, vendor: FaultyUpstream, workdir: Path) -> LocalGateway:
    return LocalGateway(
        GatewayOptions(
            workdir=workdir, redis_url=cluster.url, upstreams={"stripe": vendor.url}, supervise=False
        )
    )


def spent(cluster: RedisCluster, agent: Agent) -> int:
    with client(cluster) as r:
        return int(r.get(keys.spend(agent.key_id, "stripe", today())) or 0)


def test_after_a_flushall_of_the_cluster_money_calls_wait_for_the_ledger_and_the_cap_is_exact(
    redis_cluster: RedisCluster, vendor: FaultyUpstream, tmp_path: Path
) -> None:
    with client(redis_cluster) as r:
        r.flushall()
    with gateway(redis_cluster, vendor, tmp_path) as gw:
        name = f"flush-{uuid.uuid4().hex[:6]}"
        agent = Agent(gw, f"agents/{name}", gw.apply(manifests(name))[f"agents/{name}"])
        assert [agent.payout()[0] for _ in range(4)] == [200] * 4
        gw.wait_audited()
        gw.stop_auditor()
        with client(redis_cluster) as r:
            r.flushall()
        assert gw.apply(manifests(name), keep_tokens=True)[agent.key_id] == agent.token  # the resync
        assert agent.payout()[0] == 503  # no money call before the spend is back
        gw.start_auditor()
        gw.wait_ledger([agent.key_id])
        assert spent(redis_cluster, agent) == 40_000_000
        assert [agent.payout()[0] for _ in range(2)] == [200, 402]
    assert vendor.received == 5  # $50 of a $50 cap


def test_after_a_failover_to_a_lagging_replica_the_spend_it_lost_comes_back_from_the_ledger(
    cluster: RedisCluster, vendor: FaultyUpstream, tmp_path: Path
) -> None:
    hint_master = cluster.master_of_slot(key_slot(keys.ledger_hint().encode()))
    # A key whose master is not the one holding the ingester's own marker: only the run ids of every
    # master reveal that this one was replaced.
    name = next(
        n
        for n in (f"fo-{uuid.uuid4().hex[:6]}" for _ in range(100))
        if cluster.master_of_slot(key_slot(keys.version(f"agents/{n}").encode())) != hint_master
    )
    with gateway(cluster, vendor, tmp_path) as gw:
        agent = Agent(gw, f"agents/{name}", gw.apply(manifests(name))[f"agents/{name}"])
        slot = key_slot(keys.version(agent.key_id).encode())
        master = cluster.master_of_slot(slot)
        assert master is not None
        assert [agent.payout()[0] for _ in range(2)] == [200] * 2
        gw.wait_audited()

        # The replica stops reading: what the master acknowledges from now on dies with it.
        replica = cluster.replica_of(master)
        cluster.wait_synced(replica, master)  # it holds the grant and both payouts
        cluster.freeze(replica)
        with client(cluster) as r:
            r.set(f"{keys.version(agent.key_id)}:link-filler", b"x" * (32 << 20))
        assert [agent.payout()[0] for _ in range(2)] == [200] * 2  # $40 of $50
        gw.wait_audited()
        assert spent(cluster, agent) == 40_000_000
        with client(cluster) as r:
            checked_on = r.get(keys.ledger_hint())
        cluster.kill(master)
        cluster.thaw(replica)
        eventually(lambda: cluster.master_of_slot(slot) not in (None, master), 20, "the replica promoted")
        cluster.wait_ok()
        server = asyncio.run(_server_id(cluster.url))
        assert server != checked_on and f":{master}=" not in server  # every master's run id, by address
        with client(cluster) as r:
            eventually(lambda: r.get(keys.ledger_hint()) == server, 20, "the ingester saw the failover")
        gw.wait_ledger([agent.key_id])
        assert spent(cluster, agent) == 40_000_000  # the $20 the promoted replica never had is back
        assert [agent.payout()[0] for _ in range(2)] == [200, 402]
    assert vendor.received == 5  # overshoot: 0


async def _server_id(url: str) -> str:
    store = RedisStore.from_url(url, audited=False)
    try:
        return await store.server_id()
    finally:
        await store.close()
