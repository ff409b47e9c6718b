"""A key under a shared budget (SpendBudget) whose policy asks for approvals, against a real redis-server:
the approval sits in the budget's slot (its commit runs in one script with the budget's counters), the
operator's functions find and decide it from its id alone, and the approved call passes once, reserved
against the key's cap and the budget's. Written on `store` only, so the cluster tier runs it unchanged
(tests/integration/cluster/test_store_on_cluster.py), where a record outside the slot fails CROSSSLOT."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tests.builders import grant, spend_budget, spend_policy

from tollgate.policy.grant import Grant
from tollgate.reconcile import approvals
from tollgate.store import keys
from tollgate.store.base import ApprovalState, BudgetCharge, Commit, CommitStatus, Limits
from tollgate.store.redis import RedisStore

KEY = "agents/support-bot"
BUDGET = "agents/support"
DAY = "20261125"
T0 = 1_790_000_000_000  # ms
TTL_MS = 30 * 60_000
AMOUNT = 250_000_000  # $250: above the $100 threshold


def _limits(fp: str, aid: str, ik: str) -> Limits:
    details = json.dumps({"method": "POST", "path": "/v1/refunds", "params": {"amount": "25000"}})
    return Limits(
        idempotency_key=ik, fingerprint=fp, approval_id=aid, approval_ttl_ms=TTL_MS, approval_details=details
    )


async def _setup(store: RedisStore) -> Grant:
    # The key may spend $600 a day, the budget $300: the second approved $250 fits the key, not the budget.
    g = grant(
        spend_policy(dailyCapUsd="600", approval={"aboveUsd": "100"}),
        key_id=KEY,
        budget=spend_budget(dailyCapUsd="300"),
        budget_id=BUDGET,
    )
    await store.put_grant(g)
    return g


async def _commit(store: RedisStore, g: Grant, limits: Limits, at_ms: int) -> Commit:
    assert g.budget is not None
    charge = BudgetCharge(g.budget.id, DAY, g.budget.daily_cap_micro_usd)
    return await store.commit(
        KEY,
        g.version,
        "stripe",
        DAY,
        AMOUNT,
        g.daily_cap_micro_usd,
        at_ms=at_ms,
        limits=limits,
        budget=charge,
    )


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def test_an_approval_under_a_shared_budget_waits_in_its_slot_and_passes_once_against_both_caps(
    store: RedisStore,
) -> None:
    g = await _setup(store)
    assert g.budget_id == BUDGET
    first = _limits("fp_a", "apr-0000000000000000000a", "ik_1")

    waiting = await _commit(store, g, first, T0)
    assert (waiting.status, waiting.approval_created, waiting.reservation_id) == (
        CommitStatus.APPROVAL_PENDING,
        True,
        None,
    )
    # The record, the request's link and the pending set sit in the budget's slot, beside its counters.
    assert await store._r.exists(keys.approval(KEY, first.approval_id, BUDGET)) == 1
    assert await store._r.exists(keys.approval(KEY, first.approval_id)) == 0
    assert keys.approval(KEY, first.approval_id, BUDGET).startswith(
        "tg:{b:agents/support}:k:agents/support-bot:"
    )
    assert (await store.approval_of_request(KEY, f"fp_a:{AMOUNT}", BUDGET)) is not None
    assert await store.spent(KEY, "stripe", DAY, BUDGET) == 0 and await store.budget_spent(BUDGET, DAY) == 0

    # The operator (or `tollgate approve`) has only the id: the index leads it to the slot.
    listed = await store.approvals()
    assert [(r.id, r.key_id, r.budget_id, r.stored_state) for r in listed] == [
        (first.approval_id, KEY, BUDGET, ApprovalState.PENDING)
    ]
    decided = await approvals.decide(
        store, first.approval_id, approve=True, by="alice", now=_at(T0 + 60_000), namespace="agents"
    )
    assert decided.changed and decided.record.stored_state is ApprovalState.APPROVED

    passed = await _commit(store, g, first, T0 + 120_000)
    assert passed.status is CommitStatus.COMMITTED and passed.reservation_id is not None
    assert (passed.spent_micro_usd, passed.budget_spent_micro_usd) == (AMOUNT, AMOUNT)
    assert await store.spent(KEY, "stripe", DAY, BUDGET) == AMOUNT
    assert await store.budget_spent(BUDGET, DAY) == AMOUNT
    used = await store.approval(first.approval_id)
    assert used is not None and used.stored_state is ApprovalState.USED
    # Once: the same request under a new idempotency key meets the used approval, nothing more reserved.
    again = await _commit(store, g, _limits("fp_a", first.approval_id, "ik_2"), T0 + 130_000)
    assert again.status is CommitStatus.APPROVAL_USED and again.reservation_id is None

    # Another approved $250 fits the key's $600 but not the budget's $300: refused by the budget, and its
    # approval stays approved (as over the key's cap).
    second = _limits("fp_b", "apr-0000000000000000000b", "ik_3")
    assert (await _commit(store, g, second, T0 + 140_000)).status is CommitStatus.APPROVAL_PENDING
    await approvals.decide(store, second.approval_id, approve=True, by="bob", now=_at(T0 + 150_000))
    over = await _commit(store, g, second, T0 + 160_000)
    assert (over.status, over.spent_micro_usd, over.reservation_id) == (
        CommitStatus.OVER_BUDGET,
        AMOUNT,
        None,
    )
    still = await store.approval(second.approval_id)
    assert still is not None and still.stored_state is ApprovalState.APPROVED
    assert await store.spent(KEY, "stripe", DAY, BUDGET) == AMOUNT
    assert await store.budget_spent(BUDGET, DAY) == AMOUNT


async def test_an_index_entry_written_before_budgets_still_names_a_key_without_one(store: RedisStore) -> None:
    await store.put_grant(grant(spend_policy(approval={"aboveUsd": "100"}), key_id=KEY))
    g = await store.grant(KEY)
    assert g is not None and g.budget_id is None
    limits = _limits("fp_a", "apr-0000000000000000000c", "ik_1")
    c = await store.commit(
        KEY, g.version, "stripe", DAY, AMOUNT, g.daily_cap_micro_usd, at_ms=T0, limits=limits
    )
    assert c.status is CommitStatus.APPROVAL_PENDING
    assert await store._r.hget(keys.approvals_index(), limits.approval_id) == KEY  # the plain form
    record = await store.approval(limits.approval_id)
    assert record is not None and (record.key_id, record.budget_id) == (KEY, None)
