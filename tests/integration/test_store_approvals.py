"""Approvals in commit.lua and approval.lua, against a real redis-server: a call above the threshold creates
one pending approval (indexed for the operator), retries find the same one, only a person's decision lets
the exact call through, once, reserved against the cap in the same atomic step; rejected, expired and used
approvals are refused, and a decision can only land on a pending approval that has not expired."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

from tests.builders import grant, spend_policy

from tollgate.audit.ingest import AuditPipeline
from tollgate.audit.sql import AuditStore
from tollgate.local.processes import ManagedProcess
from tollgate.store import keys
from tollgate.store.base import ApprovalState, Commit, CommitStatus, Limits
from tollgate.store.redis import APPROVAL_KEPT_S, RedisStore

KEY = "agents/support-bot"
DAY = "20261125"
CAP = 500_000_000
T0 = 1_790_000_000_000  # ms
TTL_MS = 30 * 60_000
AID = "apr-0123456789abcdef0123"


def approval(fp: str = "fp_a", aid: str = AID, ik: str = "ik_1") -> Limits:
    details = json.dumps({"method": "POST", "path": "/v1/refunds", "params": {"amount": "25000"}})
    return Limits(
        idempotency_key=ik, fingerprint=fp, approval_id=aid, approval_ttl_ms=TTL_MS, approval_details=details
    )


async def commit(store: RedisStore, amount: int, limits: Limits, at_ms: int = T0, cap: int = CAP) -> Commit:
    g = await store.grant(KEY)
    assert g is not None
    return await store.commit(KEY, g.version, "stripe", DAY, amount, cap, at_ms=at_ms, limits=limits)


async def setup(store: RedisStore) -> None:
    await store.put_grant(grant(spend_policy(approval={"aboveUsd": "100"})))


async def test_a_call_needing_approval_creates_one_pending_record_reserves_nothing_and_is_indexed(
    store: RedisStore,
) -> None:
    await setup(store)
    first = await commit(store, 250_000_000, approval())
    again = await commit(store, 250_000_000, approval(), at_ms=T0 + 1000)
    assert (first.status, first.approval_created, first.reservation_id) == (
        CommitStatus.APPROVAL_PENDING,
        True,
        None,
    )
    assert (again.status, again.approval_created) == (CommitStatus.APPROVAL_PENDING, False)
    assert first.approval_expires_ms == again.approval_expires_ms == T0 + TTL_MS
    assert await store.spent(KEY, "stripe", DAY) == 0
    record = await store.approval(AID)
    assert record is not None and record.key_id == KEY
    assert (record.stored_state, record.cost_micro_usd, record.created_ms) == (
        ApprovalState.PENDING,
        250_000_000,
        T0,
    )
    assert record.details["params"] == {"amount": "25000"}
    ttl = await store._r.ttl(keys.approval(KEY, AID))
    assert TTL_MS // 1000 < ttl <= TTL_MS // 1000 + APPROVAL_KEPT_S
    last = await store.last_decision(KEY)
    assert last is not None and last.rule == "tollgate_approval_required"


async def test_once_approved_the_same_request_passes_exactly_once_and_is_reserved(store: RedisStore) -> None:
    await setup(store)
    await commit(store, 250_000_000, approval())
    done, record = await store.decide_approval(AID, ApprovalState.APPROVED, "alice", T0 + 60_000)
    assert done and record is not None and (record.decided_by, record.decided_ms) == ("alice", T0 + 60_000)
    assert record.expires_ms == T0 + 60_000 + TTL_MS  # the agent gets the whole ttl from the approval
    passed = await commit(store, 250_000_000, approval(), at_ms=T0 + 70_000)
    assert (passed.status, passed.spent_micro_usd) == (CommitStatus.COMMITTED, 250_000_000)
    assert passed.reservation_id is not None
    used = await store.approval(AID)
    assert used is not None and used.stored_state is ApprovalState.USED and used.used_ms == T0 + 70_000
    # the agent's retry of the call that passed is a replay: the vendor answers it, nothing more is reserved
    retry = await commit(store, 250_000_000, approval(), at_ms=T0 + 80_000)
    assert retry.status is CommitStatus.REPLAY
    assert await store.spent(KEY, "stripe", DAY) == 250_000_000


async def test_two_hundred_concurrent_retries_of_an_approved_call_pass_once(
    store: RedisStore, redis_server: ManagedProcess
) -> None:
    await setup(store)
    await commit(store, 250_000_000, approval())
    await store.decide_approval(AID, ApprovalState.APPROVED, "alice", T0 + 1)
    # as many connections as ext_authz replicas would hold (a busy CI box is slow: a long timeout)
    stores = [RedisStore.from_url(redis_server.url, timeout_s=5, audited=False) for _ in range(20)]
    try:
        got = await asyncio.gather(
            *(commit(stores[i % 20], 250_000_000, approval(), at_ms=T0 + 2) for i in range(200))
        )
    finally:
        for s in stores:
            await s.close()
    statuses = [c.status for c in got]
    assert statuses.count(CommitStatus.COMMITTED) == 1
    assert statuses.count(CommitStatus.REPLAY) == 199
    assert await store.spent(KEY, "stripe", DAY) == 250_000_000


async def test_an_approved_call_over_the_cap_is_refused_and_its_approval_stays_for_later(
    store: RedisStore,
) -> None:
    await setup(store)
    await commit(store, 250_000_000, approval())
    await store.decide_approval(AID, ApprovalState.APPROVED, "alice", T0 + 1)
    over = await commit(store, 250_000_000, approval(), at_ms=T0 + 2, cap=200_000_000)
    assert over.status is CommitStatus.OVER_CAP and over.reservation_id is None
    still = await store.approval(AID)
    assert still is not None and still.stored_state is ApprovalState.APPROVED
    assert (await commit(store, 250_000_000, approval(), at_ms=T0 + 3)).status is CommitStatus.COMMITTED


async def test_other_parameters_or_another_amount_under_the_key_are_refused_like_a_reused_key(
    store: RedisStore,
) -> None:
    await setup(store)
    await commit(store, 250_000_000, approval(fp="fp_a"))
    await store.decide_approval(AID, ApprovalState.APPROVED, "alice", T0 + 1)
    assert (await commit(store, 250_000_000, approval(fp="fp_b"))).status is CommitStatus.KEY_REUSED
    assert (await commit(store, 260_000_000, approval(fp="fp_a"))).status is CommitStatus.KEY_REUSED
    assert await store.spent(KEY, "stripe", DAY) == 0
    still = await store.approval(AID)
    assert still is not None and still.stored_state is ApprovalState.APPROVED


async def test_a_rejected_approval_refuses_the_call_and_says_who(store: RedisStore) -> None:
    await setup(store)
    await commit(store, 250_000_000, approval())
    done, _ = await store.decide_approval(AID, ApprovalState.REJECTED, "bob", T0 + 1)
    assert done
    refused = await commit(store, 250_000_000, approval(), at_ms=T0 + 2)
    assert (refused.status, refused.approval_decided_by) == (CommitStatus.APPROVAL_REJECTED, "bob")
    # and it cannot be approved afterwards
    again, record = await store.decide_approval(AID, ApprovalState.APPROVED, "alice", T0 + 3)
    assert not again and record is not None and record.stored_state is ApprovalState.REJECTED


async def test_an_approval_expires_pending_or_approved_and_cannot_be_decided_after(store: RedisStore) -> None:
    await setup(store)
    await commit(store, 250_000_000, approval())
    late = T0 + TTL_MS
    assert (await commit(store, 250_000_000, approval(), at_ms=late)).status is CommitStatus.APPROVAL_EXPIRED
    done, record = await store.decide_approval(AID, ApprovalState.APPROVED, "alice", late)
    assert not done and record is not None and record.state(late) is ApprovalState.EXPIRED
    marked, record = await store.decide_approval(AID, ApprovalState.EXPIRED, "", late)
    assert marked and record is not None and record.stored_state is ApprovalState.EXPIRED
    # approved, but the retry comes after the ttl
    other = "apr-ffffffffffffffffffff"
    await commit(store, 250_000_000, approval(aid=other, ik="ik_2"))
    await store.decide_approval(other, ApprovalState.APPROVED, "alice", T0 + 1)
    too_late = await commit(store, 250_000_000, approval(aid=other, ik="ik_2"), at_ms=T0 + 1 + TTL_MS)
    assert too_late.status is CommitStatus.APPROVAL_EXPIRED
    assert await store.spent(KEY, "stripe", DAY) == 0


async def test_an_approval_used_by_a_call_the_vendor_refused_is_not_used_again(store: RedisStore) -> None:
    await setup(store)
    await commit(store, 250_000_000, approval())
    await store.decide_approval(AID, ApprovalState.APPROVED, "alice", T0 + 1)
    passed = await commit(store, 250_000_000, approval(), at_ms=T0 + 2)
    assert passed.reservation_id is not None
    # the vendor refused it (released: its idempotency record goes, so a retry is not a replay)
    await store.release(KEY, "stripe", DAY, passed.reservation_id, "ik_1")
    again = await commit(store, 250_000_000, approval(), at_ms=T0 + 3)
    assert again.status is CommitStatus.APPROVAL_USED
    assert await store.spent(KEY, "stripe", DAY) == 0


async def test_the_index_lists_approvals_and_drops_entries_whose_record_aged_out(store: RedisStore) -> None:
    await setup(store)
    await commit(store, 250_000_000, approval())
    await commit(store, 250_000_000, approval(aid="apr-ffffffffffffffffffff", ik="ik_2"))
    assert [r.id for r in await store.approvals()] == [AID, "apr-ffffffffffffffffffff"]
    await store._r.delete(keys.approval(KEY, AID))  # its TTL ran out
    assert [r.id for r in await store.approvals()] == ["apr-ffffffffffffffffffff"]
    assert await store._r.hkeys(keys.approvals_index()) == ["apr-ffffffffffffffffffff"]
    assert await store.approval(AID) is None
    assert await store.decide_approval(AID, ApprovalState.APPROVED, "alice", T0) == (False, None)


async def test_a_call_without_an_approval_id_is_untouched_by_the_approval_block(store: RedisStore) -> None:
    await setup(store)
    plain = await commit(store, 250_000_000, Limits(idempotency_key="ik_9", fingerprint="fp"))
    assert plain.status is CommitStatus.COMMITTED
    assert await store._r.hlen(keys.approvals_index()) == 0


async def test_every_decision_is_logged_for_the_audit_and_copied_into_sql_once(
    store: RedisStore, tmp_path: Path
) -> None:
    await setup(store)
    await commit(store, 250_000_000, approval())
    await commit(store, 250_000_000, approval(aid="apr-ffffffffffffffffffff", ik="ik_2"))
    await store.decide_approval(AID, ApprovalState.APPROVED, "alice", T0 + 1)
    await store.decide_approval(AID, ApprovalState.REJECTED, "bob", T0 + 2)  # too late: not logged
    await store.decide_approval("apr-ffffffffffffffffffff", ApprovalState.EXPIRED, "", T0 + TTL_MS)
    events = await store.approval_events("0")
    assert [(e.approval_id, e.state, e.by, e.at_ms) for e in events] == [
        (AID, "approved", "alice", T0 + 1),
        ("apr-ffffffffffffffffffff", "expired", "", T0 + TTL_MS),
    ]
    assert await store.approval_events(events[0].event_id) == events[1:]

    log = tmp_path / "access.log"
    log.write_text("")
    audit = AuditStore.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    await AuditPipeline(log, audit, None, approvals=store).run_once()
    await AuditPipeline(log, audit, None, approvals=store).run_once()  # restarted: from its checkpoint
    _, rows = audit.query(
        "SELECT approval_id, vault_key_id, state, decided_by, cost_micro_usd FROM tollgate_approval_events "
        "ORDER BY event_id"
    )
    assert rows == [
        (AID, KEY, "approved", "alice", 250_000_000),
        ("apr-ffffffffffffffffffff", KEY, "expired", None, 250_000_000),
    ]
    audit.dispose()


async def test_a_key_has_at_most_so_many_approvals_waiting_and_a_decided_or_expired_one_frees_a_place(
    store: RedisStore,
) -> None:
    await setup(store)

    def nth(i: int) -> Limits:
        return replace(approval(aid=f"apr-{i:020d}", ik=f"ik_{i}"), approval_max_waiting=3)

    got = [(await commit(store, 250_000_000, nth(i))).status for i in range(4)]
    assert got == [CommitStatus.APPROVAL_PENDING] * 3 + [CommitStatus.APPROVALS_WAITING]
    assert await store.approval(f"apr-{3:020d}") is None  # nothing created, nothing indexed
    # a retry of a waiting one still finds it
    assert (await commit(store, 250_000_000, nth(0))).status is CommitStatus.APPROVAL_PENDING
    await store.decide_approval(f"apr-{0:020d}", ApprovalState.REJECTED, "bob", T0 + 1)
    assert (await commit(store, 250_000_000, nth(3), at_ms=T0 + 2)).status is CommitStatus.APPROVAL_PENDING
    assert (await commit(store, 250_000_000, nth(4), at_ms=T0 + 3)).status is CommitStatus.APPROVALS_WAITING
    # once they expire, new ones can be asked for
    later = T0 + TTL_MS + 3
    assert (await commit(store, 250_000_000, nth(4), at_ms=later)).status is CommitStatus.APPROVAL_PENDING


async def test_the_request_finds_its_approval_whatever_the_idempotency_key_it_comes_under(
    store: RedisStore,
) -> None:
    await setup(store)
    await commit(store, 250_000_000, approval())  # under ik_1
    found = await store.approval_of_request(KEY, "fp_a:250000000")
    assert found is not None and found.id == AID
    assert await store.approval_of_request(KEY, "fp_a:260000000") is None  # another cost: another request
    await store.decide_approval(AID, ApprovalState.APPROVED, "alice", T0 + 1)
    # ext_authz sends the approval it found with the call's own key: it passes once under that key
    under_new_key = approval(ik="ik_2")
    assert (await commit(store, 250_000_000, under_new_key, at_ms=T0 + 2)).status is CommitStatus.COMMITTED
    assert (await commit(store, 250_000_000, under_new_key, at_ms=T0 + 3)).status is CommitStatus.REPLAY
    assert (
        await commit(store, 250_000_000, approval(ik="ik_3"), at_ms=T0 + 4)
    ).status is CommitStatus.APPROVAL_USED
    assert await store.spent(KEY, "stripe", DAY) == 250_000_000
