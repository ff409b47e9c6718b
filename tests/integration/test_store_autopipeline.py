"""Commits that share round trips (store/autopipeline.py) against a real redis-server: each is still its
own atomic script with its own answer, a lost script is loaded again, and a lost Redis fails them all."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from tests.builders import grant

from tollgate.errors import StoreUnavailable
from tollgate.local.processes import start_redis
from tollgate.store.autopipeline import AutoPipeline
from tollgate.store.base import CommitStatus
from tollgate.store.redis import RedisStore

KEY = "agents/support-bot"


async def test_concurrent_commits_share_round_trips_and_each_gets_its_own_answer(store: RedisStore) -> None:
    g = grant()
    await store.put_grant(g)
    results = await asyncio.gather(*(store.commit(KEY, g.version, "stripe", "d", 1, 150) for _ in range(200)))
    pipe = store._commit_pipelined
    assert pipe is not None and pipe.batches < pipe.calls  # some commits did share a round trip
    granted = [r for r in results if r.status is CommitStatus.COMMITTED]
    # One script per commit, in some order: every spent figure from 1 to the cap was seen exactly once.
    assert sorted(r.spent_micro_usd for r in granted) == list(range(1, 151))
    assert len({r.reservation_id for r in granted}) == 150
    assert {r.spent_micro_usd for r in results if r.status is CommitStatus.OVER_CAP} == {150}
    assert await store.spent(KEY, "stripe", "d") == 150


async def test_a_batch_sent_after_redis_lost_the_script_loads_it_again(redis_server) -> None:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    ap = AutoPipeline(client, client.register_script("return redis.call('INCR', KEYS[1])"))
    await client.delete("tg:{ap}:n")
    await ap(["tg:{ap}:n"], [])  # alone: loads the script
    await client.script_flush()  # a restarted Redis: the batch below is refused, runs nothing, is resent
    loop = asyncio.get_running_loop()
    batch = [(["tg:{ap}:n"], [], loop.create_future()) for _ in range(5)]
    await ap._send(batch)  # type: ignore[arg-type]
    assert sorted([await f for _, _, f in batch]) == [2, 3, 4, 5, 6]  # each ran once
    await client.aclose()


async def test_when_redis_dies_every_waiting_commit_fails_closed(tmp_path) -> None:
    redis = start_redis(workdir=tmp_path)
    store = RedisStore.from_url(str(redis.url), timeout_s=0.5, audited=False)
    try:
        g = grant()
        await store.put_grant(g)
        await store.commit(KEY, g.version, "stripe", "d", 1, 10**9)  # scripts loaded, connections open
        redis.stop()
        results = await asyncio.gather(
            *(store.commit(KEY, g.version, "stripe", "d", 1, 10**9) for _ in range(20)),
            return_exceptions=True,
        )
        assert all(isinstance(r, StoreUnavailable) for r in results), results
    finally:
        await store.close()
        redis.stop()


@pytest.mark.parametrize("autopipeline", [True, False])
async def test_the_same_commits_answer_the_same_with_or_without_pipelining(
    redis_server, autopipeline: bool
) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    store = RedisStore.from_url(redis_server.url, audited=False, autopipeline=autopipeline)
    try:
        g = grant()
        await store.put_grant(g)
        results = await asyncio.gather(
            *(store.commit(KEY, g.version, "stripe", "d", 7, 100) for _ in range(30))
        )
        assert [r.status for r in results].count(CommitStatus.COMMITTED) == 14
        assert (store._commit_pipelined is not None) is autopipeline
    finally:
        await store.close()
