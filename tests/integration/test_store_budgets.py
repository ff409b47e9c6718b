"""Shared budgets (SpendBudget) in RedisStore against a real redis-server: every call is reserved against
its key's cap and the budget's in one script, across keys and vendors; release and settle move both
counters; a key changing budget moves its counters and stale commits fail. Written on `store` only, so
the cluster tier runs them unchanged (tests/integration/cluster/test_store_on_cluster.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from tests.builders import grant, spend_budget, spend_policy

from tollgate.errors import StoreUnavailable
from tollgate.policy.grant import Grant
from tollgate.store import keys
from tollgate.store.base import BudgetCharge, CommitStatus
from tollgate.store.redis import RedisStore

BUDGET = "agents/support"
DAY = "20261125"
SID = "AC" + "0" * 32


def _keys(budget_usd: str = "50", cap_usd: str = "100") -> list[Grant]:
    """A Stripe, a Twilio and a Resend key under one budget."""
    b = spend_budget(dailyCapUsd=budget_usd)
    return [
        grant(spend_policy(dailyCapUsd=cap_usd), key_id="agents/stripe-bot", budget=b),
        grant(
            spend_policy(
                vendor="twilio",
                dailyCapUsd=cap_usd,
                allow=["POST /2010-04-01/Accounts/*/Messages.json"],
                connectedAccounts=[SID],
            ),
            key_id="agents/twilio-bot",
            budget=b,
            token="tgk_twilio",
        ),
        grant(
            spend_policy(vendor="resend", dailyCapUsd=cap_usd, allow=["POST /emails"]),
            key_id="agents/resend-bot",
            budget=b,
            token="tgk_resend",
        ),
    ]


def _charge(g: Grant) -> BudgetCharge:
    assert g.budget is not None
    return BudgetCharge(g.budget.id, DAY, g.budget.daily_cap_micro_usd)


async def _commit(store: RedisStore, g: Grant, amount: int) -> tuple[CommitStatus, int, int, str | None]:
    c = await store.commit(
        g.key_id, g.version, g.vendor, DAY, amount, g.daily_cap_micro_usd, budget=_charge(g)
    )
    return c.status, c.spent_micro_usd, c.budget_spent_micro_usd, c.reservation_id


def test_the_key_counters_of_a_budgeted_key_share_the_budgets_hash_tag() -> None:
    tag = "{b:agents/support}"
    assert keys.slot("agents/a") == "vk:agents/a"  # a key without a budget keeps today's layout
    assert keys.spend("agents/a", "stripe", DAY) == "tg:{vk:agents/a}:spend:stripe:20261125"
    for name in (
        keys.version("agents/a", BUDGET),
        keys.spend("agents/a", "stripe", DAY, BUDGET),
        keys.reservation("agents/a", "r1", BUDGET),
        keys.ledger("agents/a", BUDGET),
        keys.budget_spend(BUDGET, DAY),
        keys.budget_ledger(BUDGET),
    ):
        assert name.startswith(f"tg:{tag}:")


async def test_a_call_is_reserved_against_its_key_and_its_budget_and_the_budget_stops_every_key(
    store: RedisStore,
) -> None:
    stripe, twilio, resend = _keys(budget_usd="10", cap_usd="6")
    for g in (stripe, twilio, resend):
        await store.put_grant(g)
    assert await _commit(store, stripe, 4_000_000) == (CommitStatus.COMMITTED, 4_000_000, 4_000_000, _any())
    assert (await _commit(store, twilio, 5_000_000))[:3] == (CommitStatus.COMMITTED, 5_000_000, 9_000_000)
    # Resend's own cap has room ($6), the budget has $1 left: refused at the budget, nothing reserved.
    status, spent, bspent, rid = await _commit(store, resend, 2_000_000)
    assert (status, spent, bspent, rid) == (CommitStatus.OVER_BUDGET, 9_000_000, 9_000_000, None)
    assert await store.spent(resend.key_id, "resend", DAY, BUDGET) == 0
    # The key's own cap still answers first: Stripe has $2 left of its $6.
    assert (await _commit(store, stripe, 3_000_000))[0] is CommitStatus.OVER_CAP
    assert (await _commit(store, resend, 1_000_000))[:3] == (CommitStatus.COMMITTED, 1_000_000, 10_000_000)
    assert await store.budget_spent(BUDGET, DAY) == 10_000_000
    assert (
        await store.commit(resend.key_id, resend.version, "resend", DAY, 0, 0, budget=_charge(resend))
    ).status is (CommitStatus.COMMITTED)  # a free call passes a spent budget
    last = await store.last_decision(resend.key_id, BUDGET)
    assert last is not None and last.rule == "tollgate_allowed"


async def test_release_and_settle_move_the_budget_with_the_key_once(store: RedisStore) -> None:
    stripe, twilio, _ = _keys()
    await store.put_grant(stripe)
    await store.put_grant(twilio)
    *_, r1 = await _commit(store, stripe, 7_000_000)
    *_, r2 = await _commit(store, twilio, 3_000_000)
    assert r1 and r2
    charge = _charge(stripe)
    assert await store.release(stripe.key_id, "stripe", DAY, r1, budget=charge) == 7_000_000
    assert await store.release(stripe.key_id, "stripe", DAY, r1, budget=charge) == 0
    assert await store.budget_spent(BUDGET, DAY) == 3_000_000
    assert await store.settle(twilio.key_id, "twilio", DAY, r2, 1_000_000, budget=charge) == 2_000_000
    assert await store.settle(twilio.key_id, "twilio", DAY, r2, 1_000_000, budget=charge) == 0
    assert await store.budget_spent(BUDGET, DAY) == 1_000_000
    assert await store.spent(twilio.key_id, "twilio", DAY, BUDGET) == 1_000_000
    *_, r3 = await _commit(store, stripe, 1_000_000)
    assert r3
    assert await store.settle(stripe.key_id, "stripe", DAY, r3, 4_000_000, budget=charge) == -3_000_000
    assert await store.budget_spent(BUDGET, DAY) == 5_000_000  # the vendor moved more: counted in both


async def test_two_hundred_concurrent_commits_across_three_vendors_never_overshoot_the_budget(
    store: RedisStore,
) -> None:
    # 200 × $0.37 spread over a Stripe, a Twilio and a Resend key ($30 cap each) under a $50 budget.
    grants = _keys(budget_usd="50", cap_usd="30")
    for g in grants:
        await store.put_grant(g)
    each = 370_000
    results = await _race(store, grants, each)
    granted = [r for r in results if r[0] is CommitStatus.COMMITTED]
    assert len(granted) == 50_000_000 // each  # 135 fit under the budget, to the micro-dollar
    assert await store.budget_spent(BUDGET, DAY) == len(granted) * each <= 50_000_000
    per_key = [await store.spent(g.key_id, g.vendor, DAY, BUDGET) for g in grants]
    assert sum(per_key) == len(granted) * each
    assert all(spent <= 30_000_000 for spent in per_key)
    assert {r[0] for r in results} == {CommitStatus.COMMITTED, CommitStatus.OVER_BUDGET}


async def test_two_hundred_concurrent_commits_stop_at_each_keys_cap_under_a_larger_budget(
    store: RedisStore,
) -> None:
    grants = _keys(budget_usd="50", cap_usd="10")
    for g in grants:
        await store.put_grant(g)
    each = 370_000
    results = await _race(store, grants, each)
    assert sum(r[0] is CommitStatus.COMMITTED for r in results) == 3 * (10_000_000 // each)
    for g in grants:
        assert await store.spent(g.key_id, g.vendor, DAY, BUDGET) == (10_000_000 // each) * each
    assert await store.budget_spent(BUDGET, DAY) == 3 * (10_000_000 // each) * each


async def _race(
    store: RedisStore, grants: list[Grant], each: int
) -> list[tuple[CommitStatus, int, int, str | None]]:
    """200 commits at once, round robin over the keys. At most 48 in flight: a cluster client's pool
    (64 connections a node) refuses more rather than queueing; Redis runs each script alone either way."""
    gate = asyncio.Semaphore(48)

    async def one(i: int) -> tuple[CommitStatus, int, int, str | None]:
        async with gate:
            return await _commit(store, grants[i % len(grants)], each)

    return await asyncio.gather(*(one(i) for i in range(200)))


def _any() -> object:
    class Anything:
        def __eq__(self, other: object) -> bool:
            return isinstance(other, str) and len(other) > 0

    return Anything()


async def test_a_key_that_joins_a_budget_takes_its_spend_along_and_a_commit_on_the_old_grant_is_stale(
    store: RedisStore,
) -> None:
    today = datetime.now(UTC).strftime("%Y%m%d")
    plain = grant(spend_policy(dailyCapUsd="10"), key_id="agents/stripe-bot")
    await store.put_grant(plain)
    c = await store.commit(plain.key_id, plain.version, "stripe", today, 8_000_000, 10_000_000)
    assert c.status is CommitStatus.COMMITTED
    budgeted = grant(spend_policy(dailyCapUsd="10"), key_id="agents/stripe-bot", budget=spend_budget())
    await store.put_grant(budgeted)
    # A call decided on the old grant finds no version in the old slot: decided again, never passed.
    stale = await store.commit(plain.key_id, plain.version, "stripe", today, 1, 10_000_000)
    assert stale.status is CommitStatus.STALE
    assert await store.spent(plain.key_id, "stripe", today) == 0  # the old slot is cleared
    assert await store.spent(plain.key_id, "stripe", today, BUDGET) == 8_000_000  # moved with the key
    charge = BudgetCharge(BUDGET, today, 50_000_000)
    over = await store.commit(
        plain.key_id, budgeted.version, "stripe", today, 3_000_000, 10_000_000, budget=charge
    )
    assert over.status is CommitStatus.OVER_CAP  # the key's cap still counts what it spent before
    ok = await store.commit(
        plain.key_id, budgeted.version, "stripe", today, 2_000_000, 10_000_000, budget=charge
    )
    assert (ok.status, ok.spent_micro_usd, ok.budget_spent_micro_usd) == (
        CommitStatus.COMMITTED,
        10_000_000,
        2_000_000,  # the budget counts calls made under it only
    )
    # And back out of the budget: the key's spend moves again; the budget keeps what was spent under it.
    await store.put_grant(plain)
    stale = await store.commit(plain.key_id, budgeted.version, "stripe", today, 1, 10_000_000, budget=charge)
    assert stale.status is CommitStatus.STALE
    assert await store.spent(plain.key_id, "stripe", today) == 10_000_000
    assert await store.budget_spent(BUDGET, today) == 2_000_000
    assert (await store.commit(plain.key_id, plain.version, "stripe", today, 1, 10_000_000)).status is (
        CommitStatus.OVER_CAP
    )


async def test_revoking_a_budgeted_key_makes_its_next_commit_stale(store: RedisStore) -> None:
    stripe, *_ = _keys()
    await store.put_grant(stripe)
    assert await store.revoke(stripe.key_id) is True
    assert (await _commit(store, stripe, 1))[0] is CommitStatus.STALE
    assert await store.grant(stripe.key_id) is None


@pytest.mark.parametrize("amount", [1, 0])
async def test_an_unledgered_budget_refuses_money_calls_but_not_free_ones(
    store: RedisStore, amount: int
) -> None:
    stripe, *_ = _keys()
    await store.put_grant(stripe)
    assert await store.unmarked_budgets({BUDGET}) == set()  # unaudited: marked as written
    await store.forget_marks({stripe.key_id})
    assert await store.unmarked_budgets({BUDGET}) == {BUDGET}
    assert await store.unmarked({stripe.key_id}) == {stripe.key_id}
    status = (await _commit(store, stripe, amount))[0]
    assert status is (CommitStatus.UNLEDGERED if amount else CommitStatus.COMMITTED)


async def test_a_move_cut_short_after_the_new_slot_took_the_spend_is_not_counted_twice_when_repeated(
    store: RedisStore,
) -> None:
    today = datetime.now(UTC).strftime("%Y%m%d")
    plain = grant(spend_policy(dailyCapUsd="10"), key_id="agents/stripe-bot")
    await store.put_grant(plain)
    assert (
        await store.commit(plain.key_id, plain.version, "stripe", today, 6_000_000, 10_000_000)
    ).reservation_id
    budgeted = grant(spend_policy(dailyCapUsd="10"), key_id="agents/stripe-bot", budget=spend_budget())
    # The reconcile dies after both halves of the move, before the grant is written: ...
    await store._move_in(plain, budgeted, await store._move_out(plain))
    assert (await store.commit(plain.key_id, plain.version, "stripe", today, 1, 10_000_000)).status is (
        CommitStatus.STALE  # ... meanwhile nothing passes on the old grant ...
    )
    await store.put_grant(budgeted)  # ... and the next reconcile repeats the move under the same move id.
    assert await store.spent(plain.key_id, "stripe", today, BUDGET) == 6_000_000
    assert await store.spent(plain.key_id, "stripe", today) == 0


async def test_with_replica_acks_a_refused_reservation_gives_the_budget_its_amount_back_too(
    redis_server,
) -> None:
    # This redis-server has no replica: WAIT 1 answers 0, so the paid call is refused and given back.
    store = RedisStore.from_url(redis_server.url, replica_acks=1, replica_ack_timeout_ms=5, audited=False)
    try:
        stripe, *_ = _keys()
        await store.put_grant(stripe)
        with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
            await _commit(store, stripe, 3_000_000)
        assert await store.spent(stripe.key_id, "stripe", DAY, BUDGET) == 0
        assert await store.budget_spent(BUDGET, DAY) == 0
    finally:
        await store.close()
