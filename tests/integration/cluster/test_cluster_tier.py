"""The cluster tier is what it claims: a cluster client over six real nodes, keys of many vault keys
spread over every master, and a script whose keys sit in two slots refused (so the store tests here
would catch one)."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import RedisClusterException, ResponseError
from tests.support.redis_cluster import RedisCluster

from tollgate.store import keys
from tollgate.store.connection import connect


async def test_the_store_url_builds_a_cluster_client_that_spreads_vault_keys_over_every_master(
    redis_cluster: RedisCluster,
) -> None:
    client = connect(redis_cluster.url)
    try:
        assert isinstance(client, AsyncRedisCluster)
        await client.initialize()
        masters = {client.get_node_from_key(keys.grant(f"ns/key-{i}")).name for i in range(60)}
        assert len(masters) == 3
    finally:
        await client.aclose()


async def test_one_vault_keys_keys_share_a_slot_and_two_vault_keys_do_not(
    redis_cluster: RedisCluster,
) -> None:
    client = connect(redis_cluster.url)
    try:
        a = [keys.version("ns/a"), keys.spend("ns/a", "stripe", "d"), keys.calls("ns/a")]
        assert await client.eval("return #KEYS", len(a), *a) == 3
        b = [keys.version("ns/a"), keys.version("ns/b-other")]
        with pytest.raises((ResponseError, RedisClusterException)):
            await client.eval("return #KEYS", len(b), *b)
    finally:
        await client.aclose()
