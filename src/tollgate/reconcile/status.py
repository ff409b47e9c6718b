"""What a VaultKey's, a SpendPolicy's and a SpendBudget's `.status` should say, computed from the last reconcile outcome
and what Redis holds (spend today, last decision). Pure functions, plus one store read; the operator
only writes the result. Field names are the CRDs' status schema (camelCase)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tollgate.money import format_usd
from tollgate.policy.grant import Grant, GrantBudget
from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.reconcile.policies import InvalidPolicy
from tollgate.reconcile.vault_keys import Outcome
from tollgate.record import record
from tollgate.store.base import LastDecision, StatusStore

KEY_CONDITIONS = ("Ready", "Expired", "Revoked", "Suspended")
POLICY_CONDITIONS = ("Ready", "Expired")
BUDGET_CONDITIONS = ("Ready", "Exhausted")
# States in which the key's grant is gone from Redis: every call with its token is refused as revoked.
REVOKED_STATES = frozenset({"Revoked", "PolicyMissing", "BudgetMissing", "SecretMissing", "Invalid"})
# Transitions into these states are Warning Events; into the others, Normal.
WARNING_STATES = REVOKED_STATES | {"Expired"}


@record
class KeyReport:
    """A key's state as ext_authz will treat its next call, and its spend today."""

    state: (
        str  # Ready | Suspended | Expired | Revoked | PolicyMissing | BudgetMissing | SecretMissing | Invalid
    )
    message: str
    grant_version: str | None = None
    day: str | None = None  # yyyy-mm-dd, in the policy's time zone
    daily_cap_micro_usd: int | None = None
    spent_micro_usd: int | None = None
    expires_at: datetime | None = None
    last_decision: LastDecision | None = None


def key_report(
    outcome: Outcome, grant: Grant | None, spent_micro_usd: int, last: LastDecision | None, now: datetime
) -> KeyReport:
    """The outcome says what reconcile meant; the grant says what Redis actually holds (a flush or a
    stray revoke shows as Revoked until the next resync); expiry is judged at `now`, in the order
    ext_authz checks it (expired before suspended)."""
    if not outcome.ready:
        return KeyReport(outcome.state, outcome.message)
    if grant is None:
        return KeyReport(
            "Revoked", "the key's grant is missing from Redis; the next resync restores it from the cluster"
        )
    if grant.expires_at is not None and now >= grant.expires_at:
        state = "Expired"
        message = f"expired at {_time(grant.expires_at)} ({grant.expired_by} expiresAt); calls are refused"
    elif grant.suspended:
        state, message = "Suspended", "suspended (spec.suspended: true); calls are refused until resumed"
    else:
        state, message = "Ready", outcome.message
    day = grant.day_key(now)
    return KeyReport(
        state,
        message,
        grant_version=grant.version,
        day=f"{day[:4]}-{day[4:6]}-{day[6:]}",
        daily_cap_micro_usd=grant.daily_cap_micro_usd,
        spent_micro_usd=spent_micro_usd,
        expires_at=grant.expires_at,
        last_decision=last,
    )


async def read_key_report(store: StatusStore, key_id: str, outcome: Outcome, now: datetime) -> KeyReport:
    """key_report() over what Redis holds for `key_id` now (up to three reads)."""
    if not outcome.ready:
        return key_report(outcome, None, 0, None, now)
    grant = await store.grant(key_id)
    if grant is None:
        return key_report(outcome, None, 0, None, now)
    spent = await store.spent(key_id, grant.vendor, grant.day_key(now), grant.budget_id)
    last = await store.last_decision(key_id, grant.budget_id)
    return key_report(outcome, grant, spent, last, now)


def vault_key_status(
    report: KeyReport,
    *,
    generation: int | None,
    token_secret_name: str | None,
    token_rotation: str | None,
    previous_conditions: Iterable[Mapping[str, Any]] | None,
    now: datetime,
) -> dict[str, Any]:
    """The whole `.status` of a VaultKey. Absent facts are None, so a merge patch clears them."""
    cap, spent = report.daily_cap_micro_usd, report.spent_micro_usd
    last = report.last_decision
    return {
        "state": report.state,
        "message": report.message,
        "observedGeneration": generation,
        "tokenSecretName": token_secret_name,
        "tokenRotation": token_rotation,
        "grantVersion": report.grant_version,
        "day": report.day,
        "dailyCapUsd": usd(cap) if cap is not None else None,
        "spentTodayUsd": usd(spent) if spent is not None else None,
        "remainingTodayUsd": usd(max(cap - spent, 0)) if cap is not None and spent is not None else None,
        "expiresAt": _time(report.expires_at) if report.expires_at else None,
        "lastDecision": (
            {"rule": last.rule, "decisionId": last.decision_id, "at": _time_ms(last.at_ms)} if last else None
        ),
        "conditions": conditions(
            key_truths(report.state), report.state, report.message, previous_conditions, generation, now
        ),
    }


def spend_policy_status(
    policy: SpendPolicySpec | InvalidPolicy,
    *,
    bound_keys: int,
    generation: int | None,
    previous_conditions: Iterable[Mapping[str, Any]] | None,
    now: datetime,
) -> dict[str, Any]:
    """The whole `.status` of a SpendPolicy."""
    if isinstance(policy, InvalidPolicy):
        state, message = "Invalid", policy.message
    elif policy.expires_at is not None and now >= policy.expires_at:
        state = "Expired"
        message = f"expired at {_time(policy.expires_at)}; every key bound to it is refused"
    else:
        state, message = "Ready", f"{bound_keys} VaultKey(s) bound"
    truths = {"Ready": state == "Ready", "Expired": state == "Expired"}
    return {
        "state": state,
        "message": message,
        "observedGeneration": generation,
        "boundKeys": bound_keys,
        "conditions": conditions(truths, state, message, previous_conditions, generation, now),
    }


@record
class BudgetReport:
    """A shared budget's day: its cap, and what every key under it has spent (reserved or settled)."""

    day: str  # yyyy-mm-dd, in the budget's time zone
    daily_cap_micro_usd: int
    spent_micro_usd: int


async def read_budget_report(
    store: StatusStore, budget_id: str, spec: SpendBudgetSpec, now: datetime
) -> BudgetReport:
    """The budget's day as Redis counts it (one read); the day window is the grant's (GrantBudget)."""
    window = GrantBudget(id=budget_id, daily_cap_micro_usd=spec.daily_cap_micro_usd, time_zone=spec.time_zone)
    day = window.day_key(now)
    spent = await store.budget_spent(budget_id, day)
    return BudgetReport(f"{day[:4]}-{day[4:6]}-{day[6:]}", spec.daily_cap_micro_usd, spent)


def spend_budget_status(
    report: BudgetReport,
    *,
    bound_policies: int,
    generation: int | None,
    previous_conditions: Iterable[Mapping[str, Any]] | None,
    now: datetime,
) -> dict[str, Any]:
    """The whole `.status` of a SpendBudget: spent and remaining today (what `kubectl get` shows)."""
    cap, spent = report.daily_cap_micro_usd, report.spent_micro_usd
    if spent >= cap:
        state = "Exhausted"
        message = (
            f"{usd(spent)} of {usd(cap)} USD spent today; money calls under it are refused until midnight"
        )
    else:
        state, message = (
            "Ready",
            f"{usd(spent)} of {usd(cap)} USD spent today by {bound_policies} SpendPolicy(ies)",
        )
    truths = {"Ready": state == "Ready", "Exhausted": state == "Exhausted"}
    return {
        "state": state,
        "message": message,
        "observedGeneration": generation,
        "day": report.day,
        "dailyCapUsd": usd(cap),
        "spentTodayUsd": usd(spent),
        "remainingTodayUsd": usd(max(cap - spent, 0)),
        "boundPolicies": bound_policies,
        "conditions": conditions(truths, state, message, previous_conditions, generation, now),
    }


def invalid_status(
    message: str, *, kind: str, generation: int | None, previous_conditions: Any, now: datetime
) -> dict[str, Any]:
    """The status of an object whose spec does not validate: state Invalid, the message naming the field."""
    truths = (
        key_truths("Invalid")
        if kind == "VaultKey"
        else {"Ready": False, "Exhausted": False}
        if kind == "SpendBudget"
        else {"Ready": False, "Expired": False}
    )
    return {
        "state": "Invalid",
        "message": message,
        "observedGeneration": generation,
        "conditions": conditions(truths, "Invalid", message, previous_conditions, generation, now),
    }


def key_truths(state: str) -> dict[str, bool]:
    return {
        "Ready": state == "Ready",
        "Expired": state == "Expired",
        "Revoked": state in REVOKED_STATES,
        "Suspended": state == "Suspended",
    }


def conditions(
    truths: Mapping[str, bool],
    state: str,
    message: str,
    previous: Iterable[Mapping[str, Any]] | None,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Kubernetes-style conditions. A condition that keeps its status keeps its lastTransitionTime,
    so `kubectl wait` and dashboards see real transitions, not every refresh."""
    before = {c.get("type"): c for c in previous or [] if isinstance(c, Mapping)}
    out = []
    for kind, true in truths.items():
        status = "True" if true else "False"
        old = before.get(kind)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else None
        shows_state = true or kind == "Ready"
        out.append(
            {
                "type": kind,
                "status": status,
                "reason": state if shows_state else f"Not{kind}",
                "message": message if shows_state else "",
                "lastTransitionTime": since or _time(now),
                "observedGeneration": generation,
            }
        )
    return out


@record
class Transition:
    """A Kubernetes Event worth posting: type Normal or Warning, a CamelCase reason, a message."""

    type: str
    reason: str
    message: str


def transition(old_state: str | None, new_state: str, message: str) -> Transition | None:
    """The Event for a change of state; None when the state did not change."""
    if old_state == new_state:
        return None
    kind = "Warning" if new_state in WARNING_STATES else "Normal"
    return Transition(kind, new_state, message)


def usd(micro_usd: int) -> str:
    """Micro-USD as a decimal string: 12_500_000 → '12.50', 8_300 → '0.0083'."""
    return format_usd(micro_usd).removeprefix("$")


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_ms(at_ms: int) -> str:
    at = datetime.fromtimestamp(at_ms / 1000, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
