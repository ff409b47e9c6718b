"""Approve, reject and expire approvals (rule 7b): the functions the operator's SpendApproval handlers and
local mode's `tollgate approve|reject` both call. Knows nothing of kopf.

ext_authz creates an approval (pending) when a call above spec.approval.aboveUsd arrives, and consumes it
(used) in the step that reserves the approved retry; everything between is here. Each decision is one
atomic step in Redis (store/lua/approval.lua): a person can only decide a pending approval that has not
expired, and nothing but a decision written there lets the call through, so with Redis or the operator
down an approval stays pending (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tollgate.errors import TollgateError
from tollgate.money import format_usd
from tollgate.store.base import ApprovalRecord, Approvals, ApprovalState


class ApprovalNotDecided(TollgateError):
    """The approval is unknown, or no longer pending (decided, used or expired)."""


@dataclass(frozen=True)
class Decided:
    record: ApprovalRecord
    changed: bool  # False: it already had this decision (a repeated approve is not an error)


def _ms(now: datetime) -> int:
    return int(now.timestamp() * 1000)


async def decide(store: Approvals, approval_id: str, *, approve: bool, by: str, now: datetime) -> Decided:
    """Approve or reject a pending approval, saying who. Raises ApprovalNotDecided (naming its state) when
    it cannot be: unknown, expired, used, or already decided the other way."""
    want = ApprovalState.APPROVED if approve else ApprovalState.REJECTED
    done, record = await store.decide_approval(approval_id, want, by or "unknown", _ms(now))
    if record is None:
        raise ApprovalNotDecided(f"no approval {approval_id} (unknown, or aged out of Redis)")
    if done:
        return Decided(record, True)
    state = record.state(_ms(now))
    if state is want:
        return Decided(record, False)
    if state is ApprovalState.USED and want is ApprovalState.APPROVED:
        return Decided(record, False)  # approved, and its call already passed
    who = f" by {record.decided_by}" if record.decided_by else ""
    raise ApprovalNotDecided(
        f"approval {approval_id} is {state.value}{who}; only a pending one can be decided"
    )


async def expire(store: Approvals, now: datetime) -> list[ApprovalRecord]:
    """Mark every live approval past its expiry as expired; the ones this call marked."""
    marked = []
    for record in await store.approvals():
        if (
            record.stored_state is not ApprovalState.EXPIRED
            and record.state(_ms(now)) is ApprovalState.EXPIRED
        ):
            done, after = await store.decide_approval(record.id, ApprovalState.EXPIRED, "", _ms(now))
            if done and after is not None:
                marked.append(after)
    return marked


def describe(record: ApprovalRecord, now: datetime) -> str:
    """One line for a person: id, state, amount, key, the call."""
    d = record.details
    what = f"{d.get('method', '?')} {d.get('path', '?')}"
    return (
        f"{record.id}  {record.state(_ms(now)).value:<8}  {format_usd(record.cost_micro_usd):>12}  "
        f"{record.key_id}  {what}  params={d.get('params', {})}"
    )
