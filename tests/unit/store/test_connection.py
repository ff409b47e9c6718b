"""Which client each TOLLGATE_REDIS__URL form builds (no server needed: clients connect lazily)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from tollgate.store.connection import RedisUrlError, connect


def test_a_plain_url_builds_one_redis_with_the_timeouts_and_a_blocking_pool() -> None:
    client = connect("redis://127.0.0.1:6390/2", timeout_s=0.25, max_connections=7)
    assert isinstance(client, Redis)
    pool = client.connection_pool
    assert type(pool).__name__ == "BlockingConnectionPool"
    assert pool.max_connections == 7
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["socket_timeout"] == 0.25


def test_a_cluster_url_seeds_every_listed_node_with_its_credentials() -> None:
    client = connect("rediss+cluster://bot:s%40cret@10.0.0.1:7000,10.0.0.2:7001")
    assert isinstance(client, RedisCluster)
    seeds = {(n.host, n.port) for n in client.nodes_manager.startup_nodes.values()}
    assert seeds == {("10.0.0.1", 7000), ("10.0.0.2", 7001)}
    kwargs = client.nodes_manager.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("bot", "s@cret")


def test_a_sentinel_url_names_the_master_and_db() -> None:
    client = connect("redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/3")
    pool = client.connection_pool
    assert pool.service_name == "mymaster"
    assert pool.connection_kwargs["db"] == 3
    assert [c.connection_pool.connection_kwargs["port"] for c in pool.sentinel_manager.sentinels] == [
        26379,
        26379,
    ]


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://10.0.0.1:26379",  # no master name
        "redis+sentinel://10.0.0.1:26379/m/x",  # db not a number
        "redis+cluster://10.0.0.1",  # no port
        "http://10.0.0.1:6379",
    ],
)
def test_a_url_tollgate_cannot_use_is_refused_naming_the_forms(url: str) -> None:
    with pytest.raises(RedisUrlError):
        connect(url)


async def test_closing_a_plain_client_closes_its_pool() -> None:
    client = connect("redis://127.0.0.1:6390/0")
    assert client.auto_close_connection_pool is True
    await client.aclose()
