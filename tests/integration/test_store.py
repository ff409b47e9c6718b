"""RedisStore against a real redis-server: grants, revocation, and the atomic cap."""

from __future__ import annotations

import asyncio

import pytest
from tests.builders import grant, spend_policy

from tollgate.credentials import token_digest
from tollgate.errors import StoreUnavailable
from tollgate.store import keys
from tollgate.store.base import Closing, CommitStatus, Limits
from tollgate.store.redis import RedisStore

KEY = "agents/support-bot"


async def test_a_grant_is_found_by_its_token_digest(store: RedisStore) -> None:
    g = grant()
    await store.put_grant(g)
    assert await store.key_for_token(g.token_sha256) == KEY
    assert await store.grant(KEY) == g
    assert await store.grant_ids() == {KEY}


async def test_the_token_itself_is_never_stored(store: RedisStore, redis_server) -> None:
    import redis.asyncio as aioredis

    await store.put_grant(grant(token="tgk_very_secret"))
    client = aioredis.Redis.from_url(redis_server.url)
    dump = b"".join([k + (await client.dump(k) or b"") for k in await client.keys("*")])
    await client.aclose()
    assert b"tgk_very_secret" not in dump
    assert b"sk_test_real_vendor_key" not in dump  # the vendor key is stored sealed only


async def test_revoking_removes_the_grant_but_remembers_the_token_as_revoked(store: RedisStore) -> None:
    g = grant()
    await store.put_grant(g)
    assert await store.revoke(KEY) is True
    assert await store.grant(KEY) is None
    assert await store.key_for_token(g.token_sha256) == KEY  # → "revoked", not "unknown"
    assert await store.revoke(KEY) is False


async def test_rotating_replaces_the_token(store: RedisStore) -> None:
    old, new = grant(token="tgk_old"), grant(token="tgk_new")
    await store.put_grant(old)
    await store.put_grant(new)
    current = await store.grant(KEY)
    assert current is not None and current.token_sha256 == token_digest("tgk_new")


async def test_commit_reserves_up_to_the_cap_and_no_further(store: RedisStore) -> None:
    g = grant()
    await store.put_grant(g)
    c1 = await store.commit(KEY, g.version, "stripe", "20261125", 60, 100)
    c2 = await store.commit(KEY, g.version, "stripe", "20261125", 40, 100)
    c3 = await store.commit(KEY, g.version, "stripe", "20261125", 1, 100)
    assert (c1.status, c1.spent_micro_usd) == (CommitStatus.COMMITTED, 60)
    assert (c2.status, c2.spent_micro_usd) == (CommitStatus.COMMITTED, 100)
    assert (c3.status, c3.spent_micro_usd, c3.reservation_id) == (CommitStatus.OVER_CAP, 100, None)
    assert await store.spent(KEY, "stripe", "20261125") == 100
    assert await store.spent(KEY, "stripe", "20261126") == 0  # a new day starts at zero


async def test_a_free_call_commits_without_reserving(store: RedisStore) -> None:
    g = grant()
    await store.put_grant(g)
    c = await store.commit(KEY, g.version, "stripe", "d", 0, 0)
    assert (c.status, c.reservation_id) == (CommitStatus.COMMITTED, None)


async def test_commit_records_the_last_decision_for_status(store: RedisStore) -> None:
    g = grant()
    await store.put_grant(g)
    assert await store.last_decision(KEY) is None
    await store.commit(
        KEY,
        g.version,
        "stripe",
        "d",
        0,
        0,
        rule="tollgate_endpoint_not_allowed",
        decision_id="dec_1",
        at_ms=5,
    )
    last = await store.last_decision(KEY)
    assert last is not None and (last.rule, last.decision_id, last.at_ms) == (
        "tollgate_endpoint_not_allowed",
        "dec_1",
        5,
    )
    await store.commit(KEY, g.version, "stripe", "d", 10, 5, decision_id="dec_2", at_ms=6)
    last = await store.last_decision(KEY)
    assert last is not None and (last.rule, last.decision_id) == ("tollgate_cap_exceeded", "dec_2")


async def test_a_decision_on_a_revoked_or_changed_grant_is_stale_and_reserves_nothing(
    store: RedisStore,
) -> None:
    g = grant()
    await store.put_grant(g)
    changed = grant(spend_policy(dailyCapUsd="5"))
    assert changed.version != g.version
    await store.put_grant(changed)
    assert (await store.commit(KEY, g.version, "stripe", "d", 10, 100)).status is CommitStatus.STALE
    await store.revoke(KEY)
    assert (await store.commit(KEY, changed.version, "stripe", "d", 10, 100)).status is CommitStatus.STALE
    assert await store.spent(KEY, "stripe", "d") == 0


async def test_release_and_settle_give_money_back_once(store: RedisStore) -> None:
    g = grant()
    await store.put_grant(g)
    c = await store.commit(KEY, g.version, "stripe", "d", 70, 100)
    assert c.reservation_id
    assert await store.release(KEY, "stripe", "d", c.reservation_id) == 70
    assert await store.release(KEY, "stripe", "d", c.reservation_id) == 0
    assert await store.spent(KEY, "stripe", "d") == 0
    c = await store.commit(KEY, g.version, "stripe", "d", 70, 100)
    assert c.reservation_id
    assert await store.settle(KEY, "stripe", "d", c.reservation_id, 50) == 20
    assert await store.settle(KEY, "stripe", "d", c.reservation_id, 50) == 0
    assert await store.spent(KEY, "stripe", "d") == 50


async def test_settling_above_the_reservation_counts_what_the_vendor_moved_once(store: RedisStore) -> None:
    g = grant()
    await store.put_grant(g)
    c = await store.commit(KEY, g.version, "stripe", "d", 70, 100)
    assert c.reservation_id
    assert await store.settle(KEY, "stripe", "d", c.reservation_id, 90) == -20
    assert await store.settle(KEY, "stripe", "d", c.reservation_id, 90) == 0
    assert await store.spent(KEY, "stripe", "d") == 90


async def test_closing_reservations_in_one_batch_does_what_release_and_settle_do_one_by_one(
    store: RedisStore,
) -> None:
    other = "agents/billing-bot"  # another key: on a cluster, most likely another master
    reserved: dict[str, list[str]] = {}
    for key in (KEY, other):
        g = grant(key_id=key)
        await store.put_grant(g)
        for _ in range(3):
            c = await store.commit(key, g.version, "stripe", "d", 30, 100)
            assert c.reservation_id
            reserved.setdefault(key, []).append(c.reservation_id)
    closings = [
        Closing(KEY, "stripe", "d", reserved[KEY][0], release=True),
        Closing(KEY, "stripe", "d", reserved[KEY][1], release=False, actual_micro_usd=10),
        Closing(other, "stripe", "d", reserved[other][0], release=False, actual_micro_usd=45),
        Closing(other, "stripe", "d", reserved[other][1], release=True),
    ]
    await store.close_reservations(closings, batch=3)  # two round trips
    await store.close_reservations(closings)  # closing again changes nothing
    assert await store.spent(KEY, "stripe", "d") == 0 + 10 + 30
    assert await store.spent(other, "stripe", "d") == 45 + 0 + 30
    # What settle and release say of an already closed reservation: nothing left to move.
    assert await store.release(KEY, "stripe", "d", reserved[KEY][0]) == 0
    assert await store.settle(other, "stripe", "d", reserved[other][0], 45) == 0


async def test_a_batch_of_closings_after_redis_lost_its_scripts_loads_them_again(store: RedisStore) -> None:
    g = grant()
    await store.put_grant(g)
    rids = []
    for _ in range(2):
        c = await store.commit(KEY, g.version, "stripe", "d", 40, 100)
        assert c.reservation_id
        rids.append(c.reservation_id)
    await store._r.script_flush()  # a restarted Redis (every master of a cluster)
    await store.close_reservations(
        [
            Closing(KEY, "stripe", "d", rids[0], release=True),
            Closing(KEY, "stripe", "d", rids[1], release=False, actual_micro_usd=5),
        ]
    )
    assert await store.spent(KEY, "stripe", "d") == 5


async def test_a_closing_redis_refuses_fails_the_batch_so_the_audit_closes_it_again(
    store: RedisStore,
) -> None:
    g = grant()
    await store.put_grant(g)
    c = await store.commit(KEY, g.version, "stripe", "d", 40, 100)
    assert c.reservation_id
    spend = keys.spend(KEY, "stripe", "d")
    await store._r.delete(spend)
    await store._r.hset(spend, "not", "a counter")  # settle.lua's INCRBY is refused
    with pytest.raises(StoreUnavailable):
        await store.close_reservations(
            [Closing(KEY, "stripe", "d", c.reservation_id, release=False, actual_micro_usd=5)]
        )


async def test_counters_expire_after_their_day(store: RedisStore, redis_server) -> None:
    import redis.asyncio as aioredis

    g = grant()
    await store.put_grant(g)
    await store.commit(KEY, g.version, "stripe", "d", 1, 100)
    client = aioredis.Redis.from_url(redis_server.url)
    ttl = await client.ttl(keys.spend(KEY, "stripe", "d"))
    await client.aclose()
    assert 24 * 3600 < ttl <= 2 * 24 * 3600


async def test_two_hundred_concurrent_commits_never_overshoot_the_cap(
    store: RedisStore, redis_server
) -> None:
    # Separate connections, truly concurrent: 200 × $0.37 against a $50 cap.
    stores = [
        RedisStore.from_url(redis_server.url, timeout_s=5, audited=False) for _ in range(20)
    ]  # a busy CI box is slow
    g = grant()
    await stores[0].put_grant(g)
    cap, each = 50_000_000, 370_000
    results = await asyncio.gather(
        *(stores[i % 20].commit(KEY, g.version, "stripe", "d", each, cap) for i in range(200))
    )
    granted = [r for r in results if r.status is CommitStatus.COMMITTED]
    assert len(granted) == cap // each  # 135 fit, to the micro-dollar
    assert await stores[0].spent(KEY, "stripe", "d") == len(granted) * each <= cap
    for s in stores:
        await s.close()


async def test_an_unreachable_redis_raises_store_unavailable() -> None:
    from tollgate.local.processes import free_port

    s = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    with pytest.raises(StoreUnavailable):
        await s.grant(KEY)
    await s.close()


async def test_grants_survive_a_round_trip_through_json(store: RedisStore) -> None:
    g = grant(spend_policy(params=[{"field": "amount", "op": "lte", "value": 5000}], customers=["cus_A"]))
    await store.put_grant(g)
    assert await store.grant(KEY) == g


async def test_a_burst_past_the_connection_pool_waits_for_a_connection_instead_of_failing(
    redis_server,
) -> None:
    store = RedisStore.from_url(redis_server.url, max_connections=2)
    try:
        g = grant()
        await store.put_grant(g)
        commits = await asyncio.gather(
            *(store.commit(KEY, g.version, "stripe", "burst", 1, 10**9) for _ in range(100))
        )
        assert {c.status for c in commits} == {CommitStatus.COMMITTED}
    finally:
        await store.close()


async def test_with_replica_acks_a_reservation_no_replica_holds_is_refused_and_a_free_call_is_not(
    redis_server,
) -> None:
    # This redis-server has no replica: WAIT 1 answers 0, so a paid call must not pass.
    store = RedisStore.from_url(redis_server.url, replica_acks=1, replica_ack_timeout_ms=5, audited=False)
    try:
        g = grant()
        await store.put_grant(g)
        with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
            await store.commit(KEY, g.version, "stripe", "acks", 1, 10**9)
        free = await store.commit(KEY, g.version, "stripe", "acks", 0, 10**9)
        assert free.status is CommitStatus.COMMITTED
        # The refused call never reached the vendor: its reservation is given back, not left counted.
        assert await store.spent(KEY, "stripe", "acks") == 0
        # and a retry under its idempotency key is a new call, not a replay of one that never ran
        retry = Limits(idempotency_key="idem-1", fingerprint="f1")
        for _ in range(2):
            with pytest.raises(StoreUnavailable):
                await store.commit(KEY, g.version, "stripe", "acks", 5, 10**9, limits=retry)
        assert await store.spent(KEY, "stripe", "acks") == 0
    finally:
        await store.close()
