"""The cluster tier: one real Redis Cluster (3 masters + 3 replicas on loopback) per session, and a
`store` on it, so store tests written for one Redis run here unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from tests.support.ci import required
from tests.support.redis_cluster import ClusterUnavailable, RedisCluster, require_cluster_tools, start_cluster

from tollgate.store.connection import connect
from tollgate.store.redis import RedisStore


def cluster_or_skip() -> None:
    with required("Redis Cluster tools", ClusterUnavailable):
        require_cluster_tools()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    cluster_or_skip()
    cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def store(redis_cluster: RedisCluster) -> AsyncIterator[RedisStore]:
    client = connect(redis_cluster.url)
    await client.flushall()  # RedisCluster sends it to every master
    await client.aclose()
    s = RedisStore.from_url(redis_cluster.url, audited=False)  # no audit here: grants are marked as written
    try:
        yield s
    finally:
        await s.close()
