"""Status kept current from Redis, off the hot path: timers mirror each VaultKey's spend today, remaining
budget and last decision (each SpendPolicy's bound keys and expiry, each SpendBudget's spend and remaining
today) into `.status`, and post an
Event when an object's state changes. Handlers write status through the same two functions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.reconcile.policies import InvalidPolicy, parse_budget, parse_policy
from tollgate.reconcile.status import (
    read_budget_report,
    read_key_report,
    spend_budget_status,
    spend_policy_status,
    transition,
    vault_key_status,
)
from tollgate.reconcile.vault_keys import Outcome
from tollgate_operator.errors import kopf_errors
from tollgate_operator.kube_secrets import SPEND_BUDGETS, SPEND_POLICIES, VAULT_KEYS, post_event
from tollgate_operator.settings import status_interval_s

# kopf fixes a timer's interval when the handler is registered, i.e. at import.
INTERVAL_S = status_interval_s()


@kopf.timer(*VAULT_KEYS, interval=INTERVAL_S, initial_delay=INTERVAL_S)
@kopf_errors
async def refresh_vault_key_status(
    namespace: str,
    name: str,
    body: kopf.Body,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    outcome: Outcome | None = memo.outcomes.get(f"{namespace}/{name}")
    if outcome is None:  # not reconciled by this process yet, or invalid: the handler's status stands
        return
    await publish_key_status(
        memo,
        body,
        patch,
        outcome,
        token_secret_name=status.get("tokenSecretName"),
        token_rotation=status.get("tokenRotation"),
    )


@kopf.timer(*SPEND_POLICIES, interval=INTERVAL_S, initial_delay=INTERVAL_S)
@kopf_errors
async def refresh_spend_policy_status(
    namespace: str,
    name: str,
    spec: kopf.Spec,
    body: kopf.Body,
    patch: kopf.Patch,
    vault_keys_by_policy: kopf.Index[tuple[str, str], Any],
    **_: Any,
) -> None:
    bound = len(vault_keys_by_policy.get((namespace, name), []))
    publish_policy_status(body, patch, parse_policy(spec), bound_keys=bound)


@kopf.timer(*SPEND_BUDGETS, interval=INTERVAL_S, initial_delay=INTERVAL_S)
@kopf_errors
async def refresh_spend_budget_status(
    namespace: str,
    name: str,
    spec: kopf.Spec,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    spend_policies_by_budget: kopf.Index[tuple[str, str], Any],
    **_: Any,
) -> None:
    budget = parse_budget(spec)
    if isinstance(budget, InvalidPolicy):  # the handler's Invalid status stands
        return
    bound = len(spend_policies_by_budget.get((namespace, name), []))
    await publish_budget_status(memo, body, patch, budget, bound_policies=bound)


async def publish_budget_status(
    memo: kopf.Memo, body: kopf.Body, patch: kopf.Patch, budget: SpendBudgetSpec, *, bound_policies: int
) -> None:
    """Write the SpendBudget's spend and remaining today, as Redis counts them now."""
    now = datetime.now(UTC)
    budget_id = f"{body.metadata.namespace}/{body.metadata.name}"
    report = await read_budget_report(memo.store, budget_id, budget, now)
    status = spend_budget_status(
        report,
        bound_policies=bound_policies,
        generation=body.metadata.get("generation"),
        previous_conditions=body.status.get("conditions"),
        now=now,
    )
    _write(body, patch, status, str(status["message"]))


async def publish_key_status(
    memo: kopf.Memo,
    body: kopf.Body,
    patch: kopf.Patch,
    outcome: Outcome,
    *,
    token_secret_name: str | None,
    token_rotation: str | None,
) -> None:
    """Write the VaultKey's status as Redis shows it now, and post an Event if its state changed."""
    now = datetime.now(UTC)
    key_id = f"{body.metadata.namespace}/{body.metadata.name}"
    report = await read_key_report(memo.store, key_id, outcome, now)
    status = vault_key_status(
        report,
        generation=body.metadata.get("generation"),
        token_secret_name=token_secret_name,
        token_rotation=token_rotation,
        previous_conditions=body.status.get("conditions"),
        now=now,
    )
    _write(body, patch, status, report.message)


def publish_policy_status(
    body: kopf.Body, patch: kopf.Patch, policy: SpendPolicySpec | InvalidPolicy, *, bound_keys: int
) -> None:
    status = spend_policy_status(
        policy,
        bound_keys=bound_keys,
        generation=body.metadata.get("generation"),
        previous_conditions=body.status.get("conditions"),
        now=datetime.now(UTC),
    )
    _write(body, patch, status, str(status["message"]))


def _write(body: kopf.Body, patch: kopf.Patch, status: Mapping[str, Any], message: str) -> None:
    # Only what changed: an unchanged refresh costs no API call (kopf skips an empty patch).
    current = body.status
    patch.status.update({k: v for k, v in status.items() if current.get(k) != v})
    if event := transition(current.get("state"), str(status["state"]), message):
        post_event(body, event)
