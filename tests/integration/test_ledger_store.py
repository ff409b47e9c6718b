"""Redis as the ledger's copy, against a real redis-server: no money call passes for a key whose spend
Redis does not hold from the ledger; the rebuild writes it once; a call reserved in a Redis that lost its
data and settled after the rebuild is counted then, once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.builders import grant

from tollgate.local.processes import ManagedProcess
from tollgate.store.base import CommitStatus, LedgerCopy
from tollgate.store.redis import RedisStore

KEY = "agents/support-bot"
DAY = "20261201"
SINCE = 1_764_600_000_000  # the rebuild's start, ms


@pytest.fixture
async def audited(store: RedisStore, redis_server: ManagedProcess) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(redis_server.url)  # audited: only the ledger marks keys
    try:
        yield s
    finally:
        await s.close()


async def test_money_calls_wait_for_the_ledger_marker_and_free_calls_do_not(audited: RedisStore) -> None:
    g = grant()
    await audited.put_grant(g)
    assert await audited.unmarked({KEY}) == {KEY}
    assert (await audited.commit(KEY, g.version, "stripe", DAY, 10, 100)).status is CommitStatus.UNLEDGERED
    assert (await audited.commit(KEY, g.version, "stripe", DAY, 0, 100)).status is CommitStatus.COMMITTED
    assert await audited.spent(KEY, "stripe", DAY) == 0


async def test_the_rebuild_writes_spend_and_marks_the_key_once(audited: RedisStore) -> None:
    g = grant()
    await audited.put_grant(g)
    copy = LedgerCopy(KEY, SINCE, {("stripe", DAY): 90}, [("r1", SINCE - 10)], window_ms=60_000)
    assert await audited.rebuild(copy) is True
    assert await audited.rebuild(LedgerCopy(KEY, SINCE, {("stripe", DAY): 5})) is False  # already marked
    assert await audited.unmarked({KEY}) == set()
    assert await audited.spent(KEY, "stripe", DAY) == 90
    c = await audited.commit(KEY, g.version, "stripe", DAY, 10, 100)
    assert (c.status, c.spent_micro_usd) == (CommitStatus.COMMITTED, 100)
    assert (await audited.commit(KEY, g.version, "stripe", DAY, 1, 100)).status is CommitStatus.OVER_CAP


async def test_a_call_reserved_before_the_loss_and_settled_after_the_rebuild_is_counted_once(
    audited: RedisStore,
) -> None:
    await audited.rebuild(LedgerCopy(KEY, SINCE, {("stripe", DAY): 40}))
    for _ in range(2):  # settled twice (an ingester restart reads the line again): counted once
        await audited.settle(KEY, "stripe", DAY, "lost-rid", 10, at_ms=SINCE - 1)
    assert await audited.spent(KEY, "stripe", DAY) == 50
    await audited.settle(KEY, "stripe", DAY, "later-rid", 10, at_ms=SINCE + 1)  # after the rebuild: not lost
    await audited.settle(KEY, "stripe", DAY, "no-time", 10)  # time unknown: never adopted
    assert await audited.spent(KEY, "stripe", DAY) == 50
    await audited.release(KEY, "stripe", DAY, "lost-rid")  # closed already: nothing to give back
    assert await audited.spent(KEY, "stripe", DAY) == 50


async def test_a_settled_or_released_reservation_is_closed_for_good(store: RedisStore) -> None:
    g = grant()
    await store.put_grant(g)  # not audited: the grant is marked as it is written
    a = await store.commit(KEY, g.version, "stripe", DAY, 30, 100)
    b = await store.commit(KEY, g.version, "stripe", DAY, 30, 100)
    assert a.reservation_id and b.reservation_id
    await store.settle(KEY, "stripe", DAY, a.reservation_id, 30, at_ms=1)
    assert await store.release(KEY, "stripe", DAY, b.reservation_id) == 30
    for _ in range(2):
        assert await store.release(KEY, "stripe", DAY, a.reservation_id) == 0
        assert await store.settle(KEY, "stripe", DAY, b.reservation_id, 30, at_ms=1) == 0
    assert await store.spent(KEY, "stripe", DAY) == 30
