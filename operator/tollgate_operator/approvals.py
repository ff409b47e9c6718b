"""SpendApprovals: each approval ext_authz records in Redis (a call above a policy's spec.approval.aboveUsd)
mirrored as a namespaced object in its VaultKey's namespace, and a person's decision on one
(`kubectl annotate spendapproval <id> tollgate.dev/decision=approve|reject`, optionally with
`tollgate.dev/decided-by=<who>`) written back to Redis through tollgate.reconcile.approvals.

A loop (started with the operator) polls Redis's index of approvals every status interval: it creates the
objects of new ones, marks those past their expiry expired, applies decisions annotated while the
operator was away, keeps each object's status in step, and deletes the objects of finished approvals
once Redis has forgotten them (a day after they end). The watch below applies a decision as soon as the
annotation lands. With the operator or Redis down nothing is decided: approvals stay pending, and calls
waiting for them stay refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import kopf

from tollgate.errors import TollgateError
from tollgate.reconcile.approvals import (
    FINAL_STATES,
    ApprovalNotDecided,
    approval_object,
    approval_status,
    decide,
    expire,
    requested_decision,
)
from tollgate.reconcile.status import Transition
from tollgate.store.base import ApprovalRecord, ApprovalState
from tollgate_operator.kube_secrets import SPEND_APPROVALS, KubeApi, KubeUnavailable, object_ref


async def mirror_forever(memo: kopf.Memo, logger: kopf.Logger) -> None:
    interval = memo.settings.operator.status_interval_s
    while True:
        try:
            await mirror(memo, logger)
        except TollgateError as exc:  # Redis or the API server away: nothing is decided, try again
            logger.warning(f"SpendApprovals not mirrored, retrying in {interval:g}s: {exc}")
        except Exception:  # a bug must not end the loop: approvals would silently stop being mirrored
            logger.exception(f"SpendApprovals not mirrored, retrying in {interval:g}s")
        await asyncio.sleep(interval)


async def mirror(memo: kopf.Memo, logger: kopf.Logger) -> None:
    api: KubeApi = memo.secrets
    now = datetime.now(UTC)
    for gone in await expire(memo.store, now):
        logger.info(f"Approval {gone.id} of {gone.key_id} expired")
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for o in await api.list_spend_approvals():
        meta = o.get("metadata") or {}
        if meta.get("namespace") and meta.get("name"):
            objects[(meta["namespace"], meta["name"])] = o
    for record in await memo.store.approvals():
        namespace = record.key_id.partition("/")[0]
        if api.namespaces is not None and namespace not in api.namespaces:
            continue  # another operator's namespace: its RBAC reaches no SpendApproval there
        obj = objects.pop((namespace, record.id), None)
        if obj is None:
            await api.create_spend_approval(approval_object(record))
            logger.info(f"Approval {record.id} pending for {record.key_id}")
        else:
            record = await _apply_decision(memo, obj, record, now, logger)
        status = approval_status(record, now)
        if (obj or {}).get("status") != status:
            await api.patch_spend_approval_status(namespace, record.id, status)
    for (namespace, name), obj in objects.items():
        # Redis no longer holds it: a day after it ended, or lost with Redis's data (then it can never pass).
        if (obj.get("status") or {}).get("state") in FINAL_STATES:
            await api.delete_spend_approval(namespace, name)
        elif (obj.get("status") or {}).get("state") != "Expired":
            lost = {"state": "Expired", "message": "no longer in Redis; the call is refused, ask again"}
            await api.patch_spend_approval_status(namespace, name, lost)


async def _apply_decision(
    memo: kopf.Memo, obj: dict[str, Any], record: ApprovalRecord, now: datetime, logger: kopf.Logger
) -> ApprovalRecord:
    meta = obj.get("metadata") or {}
    wanted = requested_decision(meta.get("annotations") or {}, meta.get("managedFields"))
    if wanted is None or record.state(int(now.timestamp() * 1000)) is not ApprovalState.PENDING:
        return record
    approve, by = wanted
    try:
        done = await decide(
            memo.store, record.id, approve=approve, by=by, now=now, namespace=meta["namespace"]
        )
    except ApprovalNotDecided as exc:
        logger.warning(f"SpendApproval {meta['namespace']}/{record.id}: {exc}")
        return record
    if done.changed:
        verb = "Approved" if approve else "Rejected"
        logger.info(f"Approval {record.id} of {record.key_id} {verb.lower()} by {by}")
        ref = object_ref("SpendApproval", meta["namespace"], record.id, str(meta.get("uid", "")))
        # Posted directly, not through kopf's queue: the mirror loop (a decision annotated while the
        # operator was down) runs outside any handler. The decision is in Redis already: a lost Event
        # must not stop the round from writing the statuses.
        try:
            await memo.secrets.post_event(ref, Transition("Normal", verb, f"{verb.lower()} by {by}"))
        except KubeUnavailable as exc:
            logger.warning(f"SpendApproval {meta['namespace']}/{record.id}: no {verb} Event: {exc}")
    return done.record


@kopf.on.event(*SPEND_APPROVALS)
async def spend_approval_changed(
    type: str | None, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    """A decision annotated on a SpendApproval, applied at once (the mirror loop catches any missed)."""
    if type not in ("ADDED", "MODIFIED"):
        return  # the initial listing and deletions: the mirror loop covers them
    record = await memo.store.approval(body.metadata.name or "")
    if record is None:
        return
    now = datetime.now(UTC)
    obj = {"metadata": dict(body.metadata)}
    try:
        after = await _apply_decision(memo, obj, record, now, logger)
        if after is not record:
            await memo.secrets.patch_spend_approval_status(
                body.metadata.namespace or "", after.id, approval_status(after, now)
            )
    except TollgateError as exc:  # Redis or the API away: the mirror loop tries again
        logger.warning(
            f"SpendApproval {body.metadata.namespace}/{body.metadata.name}: not decided yet: {exc}"
        )
