"""The CRDs' status schemas against what the operator writes: every `.status` tollgate.reconcile.status
can produce (each key state, each policy state, an invalid object of either kind) is admitted by the
status schema, and every printer column points at a field the schema has. The spec side (models and
schema agreeing on good and bad specs) is tests/unit/policy/test_crd.py; the examples under deploy/ are
tests/integration/test_examples.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.builders import NOW, grant, spend_budget, spend_policy, vault_key
from tests.support.crd_schema import root_schema, status_errors

from tollgate.policy.grant import Grant
from tollgate.reconcile.policies import InvalidPolicy
from tollgate.reconcile.status import (
    BudgetReport,
    invalid_status,
    key_report,
    spend_budget_status,
    spend_policy_status,
    vault_key_status,
)
from tollgate.reconcile.vault_keys import Outcome
from tollgate.store.base import LastDecision

READY = Outcome("Ready", "bound to SpendPolicy agents/refunds", "v1")
LAST = LastDecision(rule="tollgate_allowed", decision_id="d-1", at_ms=int(NOW.timestamp() * 1000))
PREVIOUS = [
    {"type": "Ready", "status": "True", "reason": "Ready", "lastTransitionTime": "2026-11-24T08:00:00Z"}
]


def key_status(
    outcome: Outcome, held: Grant | None, last: LastDecision | None = None, spent: int = 12_500_000
) -> dict[str, Any]:
    return vault_key_status(
        key_report(outcome, held, spent, last, NOW),
        generation=2,
        token_secret_name="support-bot-vault-token",
        token_rotation=None,
        previous_conditions=PREVIOUS,
        now=NOW,
    )


def policy_status(policy: Any) -> dict[str, Any]:
    return spend_policy_status(policy, bound_keys=3, generation=1, previous_conditions=None, now=NOW)


KEY_STATUSES = {
    "ready, no call yet": key_status(READY, grant()),
    "ready, with a last decision": key_status(READY, grant(), LAST),
    "ready, over the cap": key_status(READY, grant(), LAST, spent=250_000_000),
    "ready, expiring": key_status(READY, grant(key=vault_key(expiresAt=NOW + timedelta(days=1)))),
    "expired": key_status(READY, grant(key=vault_key(expiresAt=NOW - timedelta(seconds=1)))),
    "suspended": key_status(READY, grant(key=vault_key(suspended=True))),
    "grant gone from redis": key_status(READY, None),
    "policy missing": key_status(Outcome("PolicyMissing", "SpendPolicy agents/refunds does not exist"), None),
    "budget missing": key_status(Outcome("BudgetMissing", "SpendBudget agents/support does not exist"), None),
    "ready, under a budget": key_status(READY, grant(budget=spend_budget())),
    "secret missing": key_status(Outcome("SecretMissing", "Secret agents/stripe has no key api-key"), None),
    "revoked": key_status(Outcome("Revoked", "revoked"), None),
    "invalid": invalid_status(
        "spec.policyRef: Field required", kind="VaultKey", generation=None, previous_conditions=None, now=NOW
    ),
}
POLICY_STATUSES = {
    "ready": policy_status(spend_policy()),
    "expired": policy_status(spend_policy(expiresAt=NOW - timedelta(seconds=1))),
    "invalid (compiled)": policy_status(InvalidPolicy(["spec.allow[0]: unknown method"])),
    "invalid (handler)": invalid_status(
        "spec.vendor: Input should be 'stripe', 'twilio' or 'resend'",
        kind="SpendPolicy",
        generation=4,
        previous_conditions=PREVIOUS,
        now=NOW,
    ),
}


def budget_status(spent: int) -> dict[str, Any]:
    return spend_budget_status(
        BudgetReport("2026-11-25", 2_000_000_000, spent),
        bound_policies=3,
        generation=1,
        previous_conditions=None,
        now=NOW,
    )


BUDGET_STATUSES = {
    "ready": budget_status(1_234_567_891),
    "exhausted": budget_status(2_000_000_000),
    "over (settled above its reservations)": budget_status(2_000_500_000),
    "invalid": invalid_status(
        "spec.dailyCapUsd: Field required",
        kind="SpendBudget",
        generation=2,
        previous_conditions=None,
        now=NOW,
    ),
}


def test_a_budget_status_shows_spent_and_remaining() -> None:
    s = BUDGET_STATUSES["ready"]
    assert (s["spentTodayUsd"], s["remainingTodayUsd"], s["dailyCapUsd"]) == (
        "1234.567891",
        "765.432109",
        "2000.00",
    )
    assert BUDGET_STATUSES["over (settled above its reservations)"]["remainingTodayUsd"] == "0.00"


@pytest.mark.parametrize("status", BUDGET_STATUSES.values(), ids=BUDGET_STATUSES.keys())
def test_every_spend_budget_status_the_operator_writes_is_admitted(status: dict[str, Any]) -> None:
    assert status_errors("SpendBudget", status) == []


@pytest.mark.parametrize("status", KEY_STATUSES.values(), ids=KEY_STATUSES.keys())
def test_every_vault_key_status_the_operator_writes_is_admitted(status: dict[str, Any]) -> None:
    assert status_errors("VaultKey", status) == []


@pytest.mark.parametrize("status", POLICY_STATUSES.values(), ids=POLICY_STATUSES.keys())
def test_every_spend_policy_status_the_operator_writes_is_admitted(status: dict[str, Any]) -> None:
    assert status_errors("SpendPolicy", status) == []


def test_the_status_statuses_cover_every_state_the_schema_names() -> None:
    # A new state in the operator without a row above (or in the schema's enum) fails here or above.
    for kind, statuses in (
        ("VaultKey", KEY_STATUSES),
        ("SpendPolicy", POLICY_STATUSES),
        ("SpendBudget", BUDGET_STATUSES),
    ):
        enum = root_schema(kind)["properties"]["status"]["properties"]["state"]["enum"]
        assert {s["state"] for s in statuses.values()} == set(enum), kind


@pytest.mark.parametrize(
    ("kind", "status", "where"),
    [
        ("VaultKey", {**KEY_STATUSES["ready, no call yet"], "state": "Paused"}, "status.state"),
        ("VaultKey", {**KEY_STATUSES["ready, no call yet"], "spentTodayUsd": "-1"}, "status.spentTodayUsd"),
        ("VaultKey", {**KEY_STATUSES["ready, no call yet"], "day": "25/11/2026"}, "status.day"),
        (
            "SpendPolicy",
            {**POLICY_STATUSES["ready"], "conditions": [{"type": "Ready", "status": "Yes"}]},
            "status.conditions[0].status",
        ),
    ],
    ids=["unknown state", "negative spend", "day not a date", "condition status not True/False/Unknown"],
)
def test_a_status_the_operator_does_not_write_is_refused(
    kind: str, status: dict[str, Any], where: str
) -> None:
    # The schema is not so loose that the tests above cannot fail.
    assert any(e.startswith(f"{where}:") for e in status_errors(kind, status))


def _resolve(root: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = root
    for part in json_path.removeprefix(".").split("."):
        node = (node or {}).get("properties", {}).get(part)
    return node


@pytest.mark.parametrize("kind", ["SpendPolicy", "VaultKey", "SpendBudget"])
def test_every_printer_column_points_at_a_field_of_its_type(kind: str) -> None:
    from tollgate.policy import crd

    build = {
        "SpendPolicy": crd.spend_policy_crd,
        "VaultKey": crd.vault_key_crd,
        "SpendBudget": crd.spend_budget_crd,
    }[kind]
    root = root_schema(kind)
    for column in build()["spec"]["versions"][0]["additionalPrinterColumns"]:
        if column["jsonPath"] == ".metadata.creationTimestamp":
            continue
        field = _resolve(root, column["jsonPath"])
        assert field is not None, f"{column['name']}: {column['jsonPath']} is not in the schema"
        kinds = {field.get("type")} | (
            {"integer", "string"} if field.get("x-kubernetes-int-or-string") else set()
        )
        assert column["type"] in kinds, column
