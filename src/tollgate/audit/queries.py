"""The questions asked of the audit, as SQL over `tollgate_calls`: one home for `tollgate audit spend`,
`tollgate audit denials` and the daily report, so every face shows the same numbers."""

from __future__ import annotations

from typing import Any

# Money moved: allowed calls the vendor accepted (2xx). The report shows unknown outcomes beside it.
MOVED = "decision = 'allow' AND vendor_status BETWEEN 200 AND 299"
SPENT = f"SUM(CASE WHEN {MOVED} THEN cost_micro_usd ELSE 0 END)"
SPEND_GROUPS = {"key": "vault_key_id", "policy": "policy_id", "vendor": "vendor", "day": "day"}
DENIAL_GROUPS = {"rule": "rule", "key": "vault_key_id"}
# Settlements that prove an outcome; any other non-empty value (e.g. `unknown`) is an open question.
PROVEN_SETTLEMENTS = ("settled", "released")


def spend(by: str, where: str) -> str:
    """Calls, denials and money moved per `by` (a key of SPEND_GROUPS), most spent first."""
    col = SPEND_GROUPS[by]
    return (
        f"SELECT {col} AS {by}, COUNT(*) AS calls, "
        f"SUM(CASE WHEN decision = 'deny' THEN 1 ELSE 0 END) AS denied, {SPENT} AS spent_micro_usd "
        f"FROM tollgate_calls WHERE {where} GROUP BY {col} ORDER BY spent_micro_usd DESC, {col}"
    )


def denials(by: str, where: str) -> str:
    """Denied calls per `by` (a key of DENIAL_GROUPS), most first."""
    col = DENIAL_GROUPS[by]
    return (
        f"SELECT {col} AS {by}, COUNT(*) AS denied FROM tollgate_calls "
        f"WHERE decision = 'deny' AND {where} GROUP BY {col} ORDER BY denied DESC, {col}"
    )


def moved_calls(where: str) -> str:
    """Each call that moved money, in time order: the points of the spend-over-the-day chart."""
    return (
        "SELECT at, policy_id, vault_key_id, cost_micro_usd FROM tollgate_calls "
        f"WHERE {MOVED} AND cost_micro_usd > 0 AND {where} ORDER BY at, row_id"
    )


def key_policies(where: str) -> str:
    """Each key's policy and cap as its calls saw them, in time order (the last known is the one in force)."""
    return (
        "SELECT at, vault_key_id, policy_id, cap_micro_usd FROM tollgate_calls "
        f"WHERE vault_key_id IS NOT NULL AND {where} ORDER BY at, row_id"
    )


def top_calls(where: str) -> str:
    """The costliest allowed calls (`:limit` of them), whatever the vendor answered."""
    return (
        "SELECT at, vault_key_id, policy_id, method, path, cost_micro_usd, vendor_status, settlement "
        f"FROM tollgate_calls WHERE decision = 'allow' AND cost_micro_usd > 0 AND {where} "
        "ORDER BY cost_micro_usd DESC, at, row_id LIMIT :limit"
    )


def stopped_keys(rules: tuple[str, ...], where: str) -> tuple[str, dict[str, Any]]:
    """Keys refused (or, in shadow mode, that would have been) by one of `rules`: how often, first and last."""
    names = {f"rule{i}": r for i, r in enumerate(rules)}
    listed = ", ".join(f":{n}" for n in names)
    refused = f"rule IN ({listed})"
    sql = (
        f"SELECT vault_key_id, policy_id, CASE WHEN {refused} THEN rule ELSE shadow_rule END AS stopped_by, "
        f"CASE WHEN {refused} THEN 0 ELSE 1 END AS shadow, COUNT(*) AS calls, "
        "MIN(at) AS first_at, MAX(at) AS last_at FROM tollgate_calls "
        f"WHERE ({refused} OR shadow_rule IN ({listed})) AND {where} "
        "GROUP BY vault_key_id, policy_id, stopped_by, shadow ORDER BY first_at, vault_key_id"
    )
    return sql, names


def unknown_settlements(where: str) -> tuple[str, dict[str, Any]]:
    """Reservations whose outcome nothing proved: they stay counted against the cap."""
    names = {f"proven{i}": s for i, s in enumerate(PROVEN_SETTLEMENTS)}
    listed = ", ".join(f":{n}" for n in names)
    sql = (
        "SELECT at, vault_key_id, policy_id, method, path, cost_micro_usd, vendor_status, response_flags, "
        f"settlement FROM tollgate_calls WHERE settlement IS NOT NULL AND settlement NOT IN ({listed}) "
        f"AND {where} ORDER BY at, row_id"
    )
    return sql, names
