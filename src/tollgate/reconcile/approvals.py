"""Approve, reject and expire approvals (rule 7b): the functions the operator's SpendApproval handlers and
local mode's `tollgate approve|reject` both call. Knows nothing of kopf.

ext_authz creates an approval (pending) when a call above spec.approval.aboveUsd arrives, and consumes it
(used) in the step that reserves the approved retry; everything between is here. Each decision is one
atomic step in Redis (store/lua/approval.lua): a person can only decide a pending approval that has not
expired, and nothing but a decision written there lets the call through, so with Redis or the operator
down an approval stays pending (fail closed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tollgate.errors import TollgateError
from tollgate.money import format_usd, usd_digits
from tollgate.policy.approval import DECIDED_BY_ANNOTATION, DECISION_ANNOTATION
from tollgate.policy.manifests import GROUP_VERSION
from tollgate.record import record
from tollgate.store.base import ApprovalRecord, Approvals, ApprovalState


class ApprovalNotDecided(TollgateError):
    """The approval is unknown, or no longer pending (decided, used or expired)."""


@record
class Decided:
    record: ApprovalRecord
    changed: bool  # False: it already had this decision (a repeated approve is not an error)


def _ms(now: datetime) -> int:
    return int(now.timestamp() * 1000)


async def decide(
    store: Approvals,
    approval_id: str,
    *,
    approve: bool,
    by: str,
    now: datetime,
    namespace: str | None = None,
) -> Decided:
    """Approve or reject a pending approval, saying who. Raises ApprovalNotDecided (naming its state) when
    it cannot be: unknown, expired, used, or already decided the other way. With `namespace` (a
    SpendApproval's), only an approval of a vault key in that namespace: whoever may annotate
    SpendApprovals in one namespace decides nothing in another."""
    want = ApprovalState.APPROVED if approve else ApprovalState.REJECTED
    if namespace is not None:
        found = await store.approval(approval_id)
        if found is None or found.key_id.partition("/")[0] != namespace:
            raise ApprovalNotDecided(f"no approval {approval_id} for a vault key in namespace {namespace}")
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
    for approval in await store.approvals():
        if (
            approval.stored_state is not ApprovalState.EXPIRED
            and approval.state(_ms(now)) is ApprovalState.EXPIRED
        ):
            done, after = await store.decide_approval(approval.id, ApprovalState.EXPIRED, "", _ms(now))
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


# ---- SpendApproval objects (the operator mirrors each approval as one) --------------------------------

_STATES = {
    ApprovalState.PENDING: ("Pending", "waiting for a person: annotate {decision}=approve or =reject"),
    ApprovalState.APPROVED: ("Approved", "the agent's retry with the same Idempotency-Key passes once"),
    ApprovalState.REJECTED: ("Rejected", "the call is refused"),
    ApprovalState.USED: ("Used", "the approved call passed"),
    ApprovalState.EXPIRED: ("Expired", "not decided, or not retried, in time; the call is refused"),
}
FINAL_STATES = frozenset({"Rejected", "Used", "Expired"})


def _time(ms: int) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z") if ms else None


def approval_object(record: ApprovalRecord) -> dict[str, Any]:
    """The SpendApproval for `record` (its spec; status is written apart, through the subresource)."""
    namespace, _, key = record.key_id.partition("/")
    d = record.details
    spec: dict[str, Any] = {
        "vaultKey": key,
        "policy": str(d.get("policy_id", "")),
        "vendor": str(d.get("vendor", "")),
        "method": str(d.get("method", "")),
        "path": str(d.get("path", "")),
        "endpoint": str(d.get("endpoint", "")),
        "amountUsd": usd_digits(record.cost_micro_usd),
        "idempotencyKey": str(d.get("idempotency_key", "")),
        "connectedAccounts": list(d.get("accounts") or []),
        "customers": list(d.get("customers") or []),
        "params": json.dumps(d.get("params") or {}, sort_keys=True),
        "requestedAt": _time(record.created_ms),
    }
    if d.get("agent_run_id"):
        spec["agentRunId"] = str(d["agent_run_id"])
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "SpendApproval",
        "metadata": {
            "name": record.id,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "tollgate", "tollgate.dev/vault-key": key},
        },
        "spec": spec,
    }


def approval_status(record: ApprovalRecord, now: datetime) -> dict[str, Any]:
    state, message = _STATES[record.state(_ms(now))]
    return {
        "state": state,
        "message": message.format(decision=DECISION_ANNOTATION),
        "decidedBy": record.decided_by or None,
        "decidedAt": _time(record.decided_ms),
        "expiresAt": _time(record.expires_ms),
        "usedAt": _time(record.used_ms),
    }


def requested_decision(
    annotations: Mapping[str, str], managed_fields: Sequence[Mapping[str, Any]] | None
) -> tuple[bool, str] | None:
    """(approve?, by whom) from a SpendApproval's annotations; None when it asks for no (valid) decision.
    Who: the decided-by annotation, else the field manager that set the decision (the client tool, e.g.
    `kubectl-annotate`: the API server's audit log names the user)."""
    value = annotations.get(DECISION_ANNOTATION, "").strip().lower()
    if value not in ("approve", "reject"):
        return None
    by = annotations.get(DECIDED_BY_ANNOTATION, "").strip()
    if not by:
        needle = f"f:{DECISION_ANNOTATION}"
        managers = [
            m.get("manager", "") for m in managed_fields or [] if needle in json.dumps(m.get("fieldsV1"))
        ]
        by = (
            f"{managers[-1]} (field manager)"
            if managers and managers[-1]
            else "unknown (no decided-by annotation)"
        )
    return value == "approve", by
