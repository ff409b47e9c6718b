"""commit.lua beyond the cap, against a real redis-server: retries under an idempotency key are counted
once (also 200 at a time), a reused key with other parameters is refused, a released first attempt
lets a retry count again, and the loop breaker's rolling window."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from tests.builders import grant

from tollgate.local.processes import ManagedProcess
from tollgate.store import keys
from tollgate.store.base import Commit, CommitStatus, Limits
from tollgate.store.redis import IDEMPOTENCY_TTL_S, RedisStore

KEY = "agents/support-bot"
DAY = "20261125"
CAP = 100_000_000
T0 = 1_790_000_000_000  # ms


def idem(key: str = "ik_1", fp: str = "fp_a") -> Limits:
    return Limits(idempotency_key=key, fingerprint=fp)


def breaker(calls: int = 3, window_ms: int = 60_000) -> Limits:
    return Limits(breaker_calls=calls, breaker_window_ms=window_ms)


async def commit(store: RedisStore, amount: int, limits: Limits, at_ms: int = T0, cap: int = CAP) -> Commit:
    g = await store.grant(KEY)
    assert g is not None
    return await store.commit(KEY, g.version, "stripe", DAY, amount, cap, at_ms=at_ms, limits=limits)


async def setup(store: RedisStore) -> None:
    await store.put_grant(grant())


# ---- idempotency ----------------------------------------------------------------------------------


async def test_a_retry_with_the_same_key_and_parameters_is_a_replay_that_reserves_nothing(
    store: RedisStore,
) -> None:
    await setup(store)
    first = await commit(store, 15_000_000, idem())
    retry = await commit(store, 15_000_000, idem())
    assert (first.status, first.spent_micro_usd) == (CommitStatus.COMMITTED, 15_000_000)
    assert first.reservation_id is not None
    assert (retry.status, retry.reservation_id) == (CommitStatus.REPLAY, None)
    assert await store.spent(KEY, "stripe", DAY) == 15_000_000
    # a replay passes even where a second charge would not fit under the cap
    assert (await commit(store, 15_000_000, idem(), cap=20_000_000)).status is CommitStatus.REPLAY


async def test_another_key_is_another_call(store: RedisStore) -> None:
    await setup(store)
    await commit(store, 15_000_000, idem("ik_1"))
    other = await commit(store, 15_000_000, idem("ik_2"))
    assert (other.status, other.spent_micro_usd) == (CommitStatus.COMMITTED, 30_000_000)


async def test_a_reused_key_with_other_parameters_is_refused_and_reserves_nothing(store: RedisStore) -> None:
    await setup(store)
    await commit(store, 15_000_000, idem(fp="fp_a"))
    reused = await commit(store, 90_000_000, idem(fp="fp_b"))
    assert (reused.status, reused.reservation_id) == (CommitStatus.KEY_REUSED, None)
    assert await store.spent(KEY, "stripe", DAY) == 15_000_000
    last = await store.last_decision(KEY)
    assert last is not None and last.rule == "tollgate_idempotency_key_reused"


async def test_after_a_released_first_attempt_a_retry_is_counted_again(store: RedisStore) -> None:
    # The vendor refused or never ran the first attempt: it will run the retry, so the retry must count.
    await setup(store)
    first = await commit(store, 15_000_000, idem())
    assert first.reservation_id
    assert await store.release(KEY, "stripe", DAY, first.reservation_id, "ik_1") == 15_000_000
    assert await store.spent(KEY, "stripe", DAY) == 0
    retry = await commit(store, 15_000_000, idem())
    assert (retry.status, retry.spent_micro_usd) == (CommitStatus.COMMITTED, 15_000_000)
    assert retry.reservation_id and retry.reservation_id != first.reservation_id


async def test_a_retry_that_passed_while_the_first_was_pending_keeps_the_reservation_on_release(
    store: RedisStore,
) -> None:
    # The retry was forwarded on the strength of the first's reservation; if the first attempt then
    # fails, the retry may be the one the vendor ran: the money stays counted (once).
    await setup(store)
    first = await commit(store, 15_000_000, idem())
    assert first.reservation_id
    assert (await commit(store, 15_000_000, idem())).status is CommitStatus.REPLAY
    assert await store.release(KEY, "stripe", DAY, first.reservation_id, "ik_1") == 0
    assert await store.spent(KEY, "stripe", DAY) == 15_000_000
    assert (await commit(store, 15_000_000, idem())).status is CommitStatus.REPLAY


async def test_after_a_settled_first_call_retries_stay_replays(store: RedisStore) -> None:
    await setup(store)
    first = await commit(store, 15_000_000, idem())
    assert first.reservation_id
    await store.settle(KEY, "stripe", DAY, first.reservation_id, 15_000_000)
    assert (await commit(store, 15_000_000, idem())).status is CommitStatus.REPLAY
    assert await store.spent(KEY, "stripe", DAY) == 15_000_000


async def test_a_release_without_the_key_leaves_another_calls_record_alone(store: RedisStore) -> None:
    await setup(store)
    first = await commit(store, 10_000_000, idem("ik_1"))
    second = await commit(store, 10_000_000, idem("ik_2"))
    assert first.reservation_id and second.reservation_id
    # releasing ik_2's reservation under ik_1's record must not forget ik_1
    assert await store.release(KEY, "stripe", DAY, second.reservation_id, "ik_1") == 10_000_000
    assert (await commit(store, 10_000_000, idem("ik_1"))).status is CommitStatus.REPLAY


async def test_the_idempotency_record_lives_for_the_vendors_24_hours(
    store: RedisStore, redis_server: ManagedProcess
) -> None:
    await setup(store)
    await commit(store, 1, idem())
    client = aioredis.Redis.from_url(redis_server.url)
    ttl = await client.ttl(keys.idempotency(KEY, "ik_1"))
    await client.aclose()
    assert IDEMPOTENCY_TTL_S - 60 < ttl <= IDEMPOTENCY_TTL_S == 24 * 3600


async def test_two_hundred_concurrent_calls_with_one_key_reserve_once(
    store: RedisStore, redis_server: ManagedProcess
) -> None:
    await setup(store)
    stores = [
        RedisStore.from_url(redis_server.url, timeout_s=5, audited=False) for _ in range(20)
    ]  # a busy CI box is slow
    g = await store.grant(KEY)
    assert g is not None
    results = await asyncio.gather(
        *(
            stores[i % 20].commit(KEY, g.version, "stripe", DAY, 7_000_000, CAP, limits=idem("ik_same"))
            for i in range(200)
        )
    )
    statuses = [r.status for r in results]
    assert statuses.count(CommitStatus.COMMITTED) == 1
    assert statuses.count(CommitStatus.REPLAY) == 199
    assert await store.spent(KEY, "stripe", DAY) == 7_000_000
    for s in stores:
        await s.close()


# ---- loop breaker ---------------------------------------------------------------------------------


async def test_the_loop_breaker_allows_n_calls_per_rolling_window_and_says_when_to_retry(
    store: RedisStore,
) -> None:
    await setup(store)
    for i in range(3):
        assert (await commit(store, 1, breaker(), at_ms=T0 + i * 1000)).status is CommitStatus.COMMITTED
    denied = await commit(store, 1, breaker(), at_ms=T0 + 10_000)
    assert (denied.status, denied.retry_after_ms, denied.reservation_id) == (
        CommitStatus.LOOP_BREAKER,
        50_000,  # the oldest counted call (T0) leaves the window at T0 + 60 s
        None,
    )
    assert await store.spent(KEY, "stripe", DAY) == 3  # the refused call reserved nothing
    last = await store.last_decision(KEY)
    assert last is not None and last.rule == "tollgate_loop_breaker"
    # rolling, not fixed: one slot frees when the oldest call leaves the window, not all three
    assert (await commit(store, 1, breaker(), at_ms=T0 + 60_001)).status is CommitStatus.COMMITTED
    again = await commit(store, 1, breaker(), at_ms=T0 + 60_002)
    assert (again.status, again.retry_after_ms) == (CommitStatus.LOOP_BREAKER, 998)  # T0 + 1 s leaves next


async def test_refused_uncounted_and_replayed_calls_do_not_count(store: RedisStore) -> None:
    await setup(store)
    lim = Limits(idempotency_key="ik_1", fingerprint="fp", breaker_calls=2, breaker_window_ms=60_000)
    assert (await commit(store, 5, lim)).status is CommitStatus.COMMITTED
    for _ in range(5):
        assert (await commit(store, 5, lim)).status is CommitStatus.REPLAY  # retries of one call
        assert (await commit(store, 0, Limits())).status is CommitStatus.COMMITTED  # reads: no slot asked
        assert (await commit(store, CAP, breaker(2))).status is CommitStatus.OVER_CAP  # refused by the cap
    assert (await commit(store, 5, breaker(2))).status is CommitStatus.COMMITTED  # the second counted call
    assert (await commit(store, 5, breaker(2))).status is CommitStatus.LOOP_BREAKER


async def test_the_loop_breaker_holds_under_two_hundred_concurrent_calls(
    store: RedisStore, redis_server: ManagedProcess
) -> None:
    await setup(store)
    stores = [
        RedisStore.from_url(redis_server.url, timeout_s=5, audited=False) for _ in range(20)
    ]  # a busy CI box is slow
    g = await store.grant(KEY)
    assert g is not None
    results = await asyncio.gather(
        *(
            stores[i % 20].commit(KEY, g.version, "stripe", DAY, 1, CAP, at_ms=T0, limits=breaker(20))
            for i in range(200)
        )
    )
    statuses = [r.status for r in results]
    assert statuses.count(CommitStatus.COMMITTED) == 20
    assert statuses.count(CommitStatus.LOOP_BREAKER) == 180
    assert await store.spent(KEY, "stripe", DAY) == 20
    for s in stores:
        await s.close()


async def test_a_free_call_the_breaker_counts_takes_a_slot_but_reserves_nothing_and_ignores_the_cap(
    store: RedisStore,
) -> None:
    await setup(store)
    assert (await commit(store, 10, Limits(), cap=10)).status is CommitStatus.COMMITTED  # the cap is spent
    for i in range(2):  # e.g. `endpoints: [POST /v1/payment_intents]`, intents created unconfirmed
        c = await commit(store, 0, breaker(2), at_ms=T0 + i, cap=10)
        assert (c.status, c.reservation_id) == (CommitStatus.COMMITTED, None)
    assert (await commit(store, 0, breaker(2), at_ms=T0 + 2, cap=10)).status is CommitStatus.LOOP_BREAKER
    assert await store.spent(KEY, "stripe", DAY) == 10


async def test_a_released_call_keeps_its_slot(store: RedisStore) -> None:
    # The vendor refused the call, so its money comes back; a loop of refused calls is still a loop.
    await setup(store)
    first = await commit(store, 7, breaker(1))
    assert first.reservation_id is not None
    assert await store.release(KEY, "stripe", DAY, first.reservation_id) == 7
    assert await store.spent(KEY, "stripe", DAY) == 0
    again = await commit(store, 7, breaker(1), at_ms=T0 + 1_000)
    assert (again.status, again.retry_after_ms) == (CommitStatus.LOOP_BREAKER, 59_000)
