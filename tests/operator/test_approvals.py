"""SpendApprovals end to end: a refund above the policy's spec.approval.aboveUsd, refused through the real
gateway, appears as a SpendApproval in the key's namespace (the real `kopf run` process mirrors Redis);
`kubectl annotate spendapproval <id> tollgate.dev/decision=approve|reject` decides it, and the agent's
retry with the same Idempotency-Key passes once (status Used) or stays refused; an unanswered one expires;
an annotation in another namespace decides nothing; one made while the operator is down waits, the call
refused, until it is back."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import redis
import stripe
from tests.e2e.test_stripe_sdk import charge, refunded
from tests.operator.cluster import Cluster, Operator, eventually
from tests.operator.conftest import STATUS_INTERVAL_S, TIMINGS
from tests.operator.test_lifecycle import Deploy, deploy  # noqa: F401  (the fixture)

from tollgate.store import keys

APPROVAL = {"dailyCapUsd": "1000", "approval": {"aboveUsd": "100"}}
DECISION = "tollgate.dev/decision"


def pending(client: stripe.StripeClient, params: Any, ik: str) -> str:
    with pytest.raises(stripe.PermissionError) as exc:
        client.v1.refunds.create(params=params, options={"idempotency_key": ik})
    assert exc.value.error.code == "tollgate_approval_required"
    found = re.search(r"apr-[0-9a-f]{20}", exc.value.user_message or "")
    assert found
    return found[0]


def approval_in(cluster: Cluster, namespace: str, name: str, state: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = cluster.get("SpendApproval", namespace, name)
        return obj if obj and (obj.get("status") or {}).get("state") == state else None

    return eventually(check, what=f"SpendApproval {namespace}/{name} {state}")


def annotate(cluster: Cluster, namespace: str, name: str, **annotations: str) -> None:
    cluster.patch("SpendApproval", namespace, name, {"metadata": {"annotations": annotations}})


def test_a_pending_approval_is_mirrored_and_an_annotation_approves_it_for_one_call(
    deploy: Deploy,  # noqa: F811  (the fixture imported above)
    cluster: Cluster,
    direct: stripe.StripeClient,
) -> None:
    a = deploy(APPROVAL)
    ch = charge(direct, 100_000)
    big: Any = {"charge": ch.id, "amount": 25_000}
    aid = pending(a.stripe, big, "ik-op-approve")
    refused_at = time.monotonic()
    obj = approval_in(cluster, a.namespace, aid, "Pending")
    TIMINGS.append(
        (
            f"call refused → SpendApproval Pending (mirror every {STATUS_INTERVAL_S:g} s)",
            time.monotonic() - refused_at,
        )
    )
    spec = obj["spec"]
    assert (spec["vaultKey"], spec["policy"], spec["endpoint"], spec["amountUsd"]) == (
        "bot",
        f"{a.namespace}/refunds",
        "refunds.create",
        "250.00",
    )
    assert spec["idempotencyKey"] == "ik-op-approve" and '"amount": "25000"' in spec["params"]

    annotate(cluster, a.namespace, aid, **{DECISION: "approve", "tollgate.dev/decided-by": "alice"})
    annotated_at = time.monotonic()

    def retry_passes() -> bool:
        try:
            a.stripe.v1.refunds.create(params=big, options={"idempotency_key": "ik-op-approve"})
        except stripe.PermissionError:
            time.sleep(0.02)
            return False
        return True

    eventually(retry_passes, what="the agent's retry passing")
    TIMINGS.append(
        ("SpendApproval annotated approve → the agent's retry passes", time.monotonic() - annotated_at)
    )
    approved = approval_in(cluster, a.namespace, aid, "Used")
    assert approved["status"]["decidedBy"] == "alice"
    assert refunded(direct, ch.id) == 25_000
    assert approved["status"]["usedAt"] and approved["status"]["decidedAt"]
    reasons = [e["reason"] for e in cluster.events(a.namespace, aid)]
    assert "Approved" in reasons


def test_an_approval_annotated_while_the_operator_is_down_lets_nothing_through_until_it_is_back(
    deploy: Deploy,  # noqa: F811  (the fixture imported above)
    cluster: Cluster,
    direct: stripe.StripeClient,
    operator: Operator,
    redis_client: redis.Redis,
) -> None:
    a = deploy(APPROVAL)
    ch = charge(direct, 100_000)
    big: Any = {"charge": ch.id, "amount": 25_000}
    aid = pending(a.stripe, big, "ik-op-down")
    approval_in(cluster, a.namespace, aid, "Pending")
    record = keys.approval(f"{a.namespace}/bot", aid)
    operator.stop()
    try:
        annotate(cluster, a.namespace, aid, **{DECISION: "approve", "tollgate.dev/decided-by": "alice"})
        time.sleep(4 * STATUS_INTERVAL_S)  # longer than a running operator takes to apply it
        # nothing wrote the decision into Redis: the retry is refused, the approval still pending
        assert pending(a.stripe, big, "ik-op-down") == aid
        assert redis_client.hget(record, "state") == "pending"
        assert cluster.status("SpendApproval", a.namespace, aid)["state"] == "Pending"
    finally:
        operator.start()

    refusals: list[str | None] = []

    def retry_passes() -> bool:
        try:
            a.stripe.v1.refunds.create(params=big, options={"idempotency_key": "ik-op-down"})
        except stripe.PermissionError as exc:
            refusals.append(exc.error.code if exc.error else None)
            time.sleep(0.02)
            return False
        return True

    eventually(retry_passes, what="the agent's retry passing once the operator is back")
    assert set(refusals) <= {"tollgate_approval_required"}  # until then: still waiting, nothing else
    used = approval_in(cluster, a.namespace, aid, "Used")
    assert used["status"]["decidedBy"] == "alice"
    eventually(
        lambda: "Approved" in [e["reason"] for e in cluster.events(a.namespace, aid)],
        what="an Approved Event, whether the watch or the mirror loop applied it",
    )
    # exactly once: one refund, and the same call under a new key is a new request, asking again
    assert refunded(direct, ch.id) == 25_000
    assert pending(a.stripe, big, "ik-op-down-again") != aid
    assert refunded(direct, ch.id) == 25_000


def test_a_rejection_by_annotation_keeps_the_call_refused(
    deploy: Deploy,  # noqa: F811  (the fixture imported above)
    cluster: Cluster,
    direct: stripe.StripeClient,
) -> None:
    a = deploy(APPROVAL)
    ch = charge(direct, 100_000)
    big: Any = {"charge": ch.id, "amount": 25_000}
    aid = pending(a.stripe, big, "ik-op-reject")
    approval_in(cluster, a.namespace, aid, "Pending")
    annotate(cluster, a.namespace, aid, **{DECISION: "reject"})
    rejected = approval_in(cluster, a.namespace, aid, "Rejected")
    assert rejected["status"]["decidedBy"]  # the field manager, without a decided-by annotation
    with pytest.raises(stripe.PermissionError) as exc:
        a.stripe.v1.refunds.create(params=big, options={"idempotency_key": "ik-op-reject"})
    assert exc.value.error.code == "tollgate_approval_rejected"
    assert refunded(direct, ch.id) == 0


def test_an_approval_nobody_answers_expires(
    deploy: Deploy,  # noqa: F811  (the fixture imported above)
    cluster: Cluster,
    direct: stripe.StripeClient,
) -> None:
    a = deploy({**APPROVAL, "approval": {"aboveUsd": "100", "ttl": "1s"}})
    ch = charge(direct, 100_000)
    aid = pending(a.stripe, {"charge": ch.id, "amount": 25_000}, "ik-op-expire")
    expired = approval_in(cluster, a.namespace, aid, "Expired")
    assert expired["status"]["expiresAt"]


def test_a_decision_annotated_in_another_namespace_decides_nothing(
    deploy: Deploy,  # noqa: F811  (the fixture imported above)
    cluster: Cluster,
    direct: stripe.StripeClient,
    redis_client: redis.Redis,
) -> None:
    a = deploy(APPROVAL)
    ch = charge(direct, 100_000)
    aid = pending(a.stripe, {"charge": ch.id, "amount": 25_000}, "ik-op-elsewhere")
    approval_in(cluster, a.namespace, aid, "Pending")
    other = f"{a.namespace}-x"[:63]
    spec = {**cluster.get("SpendApproval", a.namespace, aid)["spec"]}  # type: ignore[index]
    cluster.create("SpendApproval", other, aid, spec=spec)
    annotate(cluster, other, aid, **{DECISION: "approve", "tollgate.dev/decided-by": "mallory"})
    record = keys.approval(f"{a.namespace}/bot", aid)
    for _ in range(3):  # a few mirror rounds
        approval_in(cluster, a.namespace, aid, "Pending")
        assert redis_client.hget(record, "state") == "pending"
    with pytest.raises(stripe.PermissionError):
        a.stripe.v1.refunds.create(
            params={"charge": ch.id, "amount": 25_000}, options={"idempotency_key": "ik-op-elsewhere"}
        )
