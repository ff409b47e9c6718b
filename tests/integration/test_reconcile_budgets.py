"""Reconcile with shared budgets (local mode's path, the operator's code): a policy's budgetRef compiled
into its keys' grants, a missing budget refusing them, and a policy gaining a budgetRef moving its keys'
spend to the budget's slot, where a commit decided on the old grant fails STALE."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.builders import BOX

from tollgate.policy.manifests import (
    BudgetObject,
    InvalidManifests,
    KeyObject,
    Manifests,
    PolicyObject,
    SecretObject,
    load_path,
)
from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.reconcile.manifests import apply_manifests
from tollgate.store.base import BudgetCharge, CommitStatus
from tollgate.store.redis import RedisStore

KEY = "support/bot"
BUDGET = "support/team"


def manifests(*, budget: bool, with_budget_object: bool = True) -> Manifests:
    m = Manifests()
    spec: dict[str, object] = {"vendor": "stripe", "dailyCapUsd": "10", "allow": ["POST /v1/refunds"]}
    if budget:
        spec["budgetRef"] = {"name": "team"}
    m.policies["support/refunds"] = PolicyObject("support", "refunds", SpendPolicySpec.model_validate(spec))
    if with_budget_object:
        m.budgets[BUDGET] = BudgetObject(
            "support", "team", SpendBudgetSpec.model_validate({"dailyCapUsd": "100"})
        )
    key = {"policyRef": {"name": "refunds"}, "vendorKeySecretRef": {"name": "stripe", "key": "api-key"}}
    m.keys[KEY] = KeyObject("support", "bot", VaultKeySpec.model_validate(key))
    m.secrets["support/stripe"] = SecretObject("support", "stripe", {"api-key": "sk_test_x"})
    return m


async def test_a_policys_budget_ref_is_compiled_into_its_keys_grants(store: RedisStore) -> None:
    result = await apply_manifests(store, BOX, manifests(budget=True))
    assert result[KEY][1].state == "Ready"
    g = await store.grant(KEY)
    assert g is not None and g.budget is not None
    assert (g.budget.id, g.budget.daily_cap_micro_usd, g.budget.time_zone) == (BUDGET, 100_000_000, "UTC")


async def test_a_key_whose_policy_names_a_missing_budget_is_refused(store: RedisStore) -> None:
    await apply_manifests(store, BOX, manifests(budget=False))
    assert await store.grant(KEY) is not None
    result = await apply_manifests(store, BOX, manifests(budget=True, with_budget_object=False))
    assert result[KEY][1].state == "BudgetMissing"
    assert "SpendBudget support/team" in result[KEY][1].message
    assert await store.grant(KEY) is None  # fail closed: revoked, not left under its old terms


async def test_a_policy_gaining_a_budget_moves_its_keys_spend_and_a_commit_on_the_old_grant_is_stale(
    store: RedisStore,
) -> None:
    day = datetime.now(UTC).strftime("%Y%m%d")
    first = await apply_manifests(store, BOX, manifests(budget=False))
    old = await store.grant(KEY)
    assert old is not None
    assert (await store.commit(KEY, old.version, "stripe", day, 7_000_000, 10_000_000)).status is (
        CommitStatus.COMMITTED
    )
    await apply_manifests(store, BOX, manifests(budget=True), keep_tokens={KEY: first[KEY][0]})
    new = await store.grant(KEY)
    assert new is not None and new.budget_id == BUDGET
    assert (await store.commit(KEY, old.version, "stripe", day, 1, 10_000_000)).status is CommitStatus.STALE
    assert await store.spent(KEY, "stripe", day, BUDGET) == 7_000_000
    charge = BudgetCharge(BUDGET, day, 100_000_000)
    over = await store.commit(KEY, new.version, "stripe", day, 4_000_000, 10_000_000, budget=charge)
    assert over.status is CommitStatus.OVER_CAP  # $7 + $4 is over the key's own $10, budget or not


def test_local_mode_reads_a_spend_budget_from_its_folder_and_names_a_missing_one(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: tollgate.dev/v1alpha1\nkind: SpendBudget\nmetadata: {name: team, namespace: support}\n"
        "spec: {dailyCapUsd: '2000', timeZone: Europe/Paris}\n---\n"
        "apiVersion: tollgate.dev/v1alpha1\nkind: SpendPolicy\nmetadata: {name: p, namespace: support}\n"
        "spec: {vendor: stripe, dailyCapUsd: '5', allow: ['POST /v1/refunds'], budgetRef: {name: team}}\n"
    )
    m = load_path(tmp_path)
    assert m.budgets[BUDGET].spec.time_zone == "Europe/Paris"
    (tmp_path / "b.yaml").write_text(
        "apiVersion: tollgate.dev/v1alpha1\nkind: SpendPolicy\nmetadata: {name: q, namespace: support}\n"
        "spec: {vendor: stripe, dailyCapUsd: '5', allow: ['POST /v1/refunds'], budgetRef: {name: other}}\n"
    )
    with pytest.raises(InvalidManifests) as exc:
        load_path(tmp_path)
    assert exc.value.problems == [
        "SpendPolicy support/q: spec.budgetRef.name: no SpendBudget support/other in these manifests"
    ]
