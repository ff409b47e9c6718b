"""The operator's kopf handlers called as plain functions against a real redis-server, with the
Kubernetes side (Secrets) in memory: what each handler leaves in Redis, in the token Secret and in the
patch it hands back to kopf. The operator tier runs the same handlers inside `kopf run`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, cast

import kopf
import pytest
from tests.integration.test_reconcile_policies import BOX, NS, MemoryTokens, vendor_secrets

import tollgate_operator.errors
import tollgate_operator.handlers
import tollgate_operator.status
from tollgate.credentials import token_digest
from tollgate.reconcile.context import ReconcileContext
from tollgate.reconcile.status import Transition
from tollgate.reconcile.tokens import VaultKeyObject
from tollgate.store.redis import RedisStore
from tollgate_operator.handlers import (
    IndexedKey,
    spend_budget_changed,
    spend_budget_deleted,
    spend_policy_changed,
    spend_policy_deleted,
    vault_key_changed,
    vault_key_deleted,
    vendor_key_changed,
)
from tollgate_operator.startup import KeyLocks

POLICY_SPEC = {"vendor": "stripe", "dailyCapUsd": "100", "allow": ["POST /v1/refunds", "GET /v1/charges"]}
KEY_SPEC = {"policyRef": {"name": "refunds"}, "vendorKeySecretRef": {"name": "stripe", "key": "api-key"}}
UID = "uid-bot"


class KubeDouble(MemoryTokens):
    """The operator's KubeApi in memory: token Secrets (MemoryTokens) and vendor-key Secrets."""

    def __init__(self) -> None:
        super().__init__()
        self.vendor = vendor_secrets()

    async def read(self, namespace: str, name: str, key: str) -> str:
        return await self.vendor.read(namespace, name, key)


@pytest.fixture(autouse=True)
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Transition]]]:
    """Events the handlers post, by object name (kopf posts them from its own loop, absent here)."""
    posted: list[tuple[str, Transition]] = []

    def post(obj: Any, event: Transition) -> None:
        posted.append((obj["metadata"]["name"], event))

    for module in (tollgate_operator.handlers, tollgate_operator.status, tollgate_operator.errors):
        monkeypatch.setattr(module, "post_event", post)
    yield posted


@pytest.fixture
def memo(store: RedisStore) -> kopf.Memo:
    kube = KubeDouble()
    return kopf.Memo(
        store=store,
        box=BOX,
        secrets=kube,
        reconcile=ReconcileContext.from_api(store, BOX, kube),
        locks=KeyLocks(),
        outcomes={},
    )


async def run(handler: object, **kwargs: Any) -> None:
    """Call a handler as kopf does, with keyword arguments (its registered type is kopf's); kopf passes
    every index to every handler, so the SpendBudget ones default to empty here."""
    kwargs = {"spend_budgets": {}, "spend_policies_by_budget": {}, **kwargs}
    await cast(Callable[..., Awaitable[None]], handler)(**kwargs)


def body(kind: str, name: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> kopf.Body:
    raw = {
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": kind,
        "metadata": {
            "namespace": NS,
            "name": name,
            "uid": UID if kind == "VaultKey" else "uid-p",
            "generation": 1,
        },
        "spec": spec,
        "status": status or {},
    }
    return kopf.Body(cast(kopf.RawBody, raw))


async def key_event(
    memo: kopf.Memo,
    reason: kopf.Reason,
    spec: dict[str, Any],
    status: dict[str, Any] | None = None,
    policies: dict[tuple[str, str], list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Run the VaultKey handler as kopf would; the status patch it returns."""
    b, patch = body("VaultKey", "bot", spec, status), kopf.Patch()
    await run(
        vault_key_changed,
        reason=reason,
        namespace=NS,
        name="bot",
        uid=UID,
        spec=b.spec,
        status=b.status,
        body=b,
        patch=patch,
        memo=memo,
        spend_policies={(NS, "refunds"): [POLICY_SPEC]} if policies is None else policies,
    )
    return dict(patch.get("status") or {})


def token_of(memo: kopf.Memo) -> str:
    tokens: KubeDouble = memo.secrets
    return tokens.token(VaultKeyObject.parse(NS, "bot", UID, KEY_SPEC))


async def test_a_created_key_gets_a_token_a_grant_and_a_ready_status(
    memo: kopf.Memo, store: RedisStore, events: list[tuple[str, Transition]]
) -> None:
    status = await key_event(memo, kopf.Reason.CREATE, KEY_SPEC)
    grant = await store.grant(f"{NS}/bot")
    assert grant is not None and grant.token_sha256 == token_digest(token_of(memo))
    assert status["state"] == "Ready" and status["tokenSecretName"] == "bot-vault-token"
    assert status["dailyCapUsd"] == "100.00" and status["spentTodayUsd"] == "0.00"
    assert [(n, e.reason) for n, e in events] == [("bot", "TokenMinted"), ("bot", "Ready")]


async def test_a_resumed_or_updated_key_keeps_its_token_until_token_rotation_changes(
    memo: kopf.Memo, events: list[tuple[str, Transition]]
) -> None:
    await key_event(memo, kopf.Reason.CREATE, {**KEY_SPEC, "tokenRotation": "1"})
    first = token_of(memo)
    ready = {"state": "Ready", "tokenRotation": "1"}
    await key_event(memo, kopf.Reason.RESUME, {**KEY_SPEC, "tokenRotation": "1"}, ready)
    await key_event(memo, kopf.Reason.UPDATE, {**KEY_SPEC, "tokenRotation": "1", "suspended": True}, ready)
    assert token_of(memo) == first

    status = await key_event(memo, kopf.Reason.UPDATE, {**KEY_SPEC, "tokenRotation": "2"}, ready)
    assert token_of(memo) != first and status["tokenRotation"] == "2"
    assert "TokenRotated" in [e.reason for _, e in events]


async def test_a_suspended_key_keeps_its_grant_and_says_suspended(memo: kopf.Memo, store: RedisStore) -> None:
    await key_event(memo, kopf.Reason.CREATE, KEY_SPEC)
    status = await key_event(memo, kopf.Reason.UPDATE, {**KEY_SPEC, "suspended": True}, {"state": "Ready"})
    grant = await store.grant(f"{NS}/bot")
    assert grant is not None and grant.suspended
    assert status["state"] == "Suspended"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Suspended"] == "True"


async def test_a_key_before_its_policy_has_a_token_and_works_once_the_policy_arrives(
    memo: kopf.Memo, store: RedisStore
) -> None:
    status = await key_event(memo, kopf.Reason.CREATE, KEY_SPEC, policies={})
    assert status["state"] == "PolicyMissing" and await store.grant(f"{NS}/bot") is None
    token = token_of(memo)

    policy = body("SpendPolicy", "refunds", POLICY_SPEC)
    patch = kopf.Patch()
    await run(
        spend_policy_changed,
        namespace=NS,
        name="refunds",
        spec=policy.spec,
        body=policy,
        patch=patch,
        memo=memo,
        vault_keys_by_policy={(NS, "refunds"): [IndexedKey(NS, "bot", UID, KEY_SPEC)]},
    )
    grant = await store.grant(f"{NS}/bot")
    assert grant is not None and grant.token_sha256 == token_digest(token)
    assert patch["status"]["boundKeys"] == 1 and memo.outcomes[f"{NS}/bot"].ready


async def test_deleting_the_policy_or_the_key_revokes_the_grant(memo: kopf.Memo, store: RedisStore) -> None:
    await key_event(memo, kopf.Reason.CREATE, KEY_SPEC)
    index = {(NS, "refunds"): [IndexedKey(NS, "bot", UID, KEY_SPEC)]}
    await run(spend_policy_deleted, namespace=NS, name="refunds", memo=memo, vault_keys_by_policy=index)
    assert await store.grant(f"{NS}/bot") is None
    assert memo.outcomes[f"{NS}/bot"].state == "PolicyMissing"

    await key_event(memo, kopf.Reason.UPDATE, KEY_SPEC, {"state": "PolicyMissing"})
    assert await store.grant(f"{NS}/bot") is not None
    await run(vault_key_deleted, namespace=NS, name="bot", uid=UID, memo=memo)
    assert await store.grant(f"{NS}/bot") is None and f"{NS}/bot" not in memo.outcomes
    # a fan-out still holding the deleted key's entry cannot bring it back
    policy = body("SpendPolicy", "refunds", POLICY_SPEC)
    fan_out = {"spec": policy.spec, "body": policy, "patch": kopf.Patch(), "vault_keys_by_policy": index}
    await run(spend_policy_changed, namespace=NS, name="refunds", memo=memo, **fan_out)
    assert await store.grant(f"{NS}/bot") is None


async def test_a_changed_vendor_key_secret_reseals_the_keys_that_use_it(
    memo: kopf.Memo, store: RedisStore, events: list[tuple[str, Transition]]
) -> None:
    await key_event(memo, kopf.Reason.CREATE, KEY_SPEC)
    memo.secrets.vendor = vendor_secrets("sk_test_vendor_key_two")
    users = {(NS, "stripe"): [IndexedKey(NS, "bot", UID, KEY_SPEC)]}
    policies = {(NS, "refunds"): [POLICY_SPEC]}
    common: dict[str, Any] = {"namespace": NS, "name": "stripe", "memo": memo, "spend_policies": policies}

    await run(vendor_key_changed, type=None, vault_keys_by_secret=users, **common)  # the initial listing
    before = await store.grant(f"{NS}/bot")
    assert before is not None and BOX.open(before.credential) != "sk_test_vendor_key_two"

    await run(vendor_key_changed, type="MODIFIED", vault_keys_by_secret=users, **common)
    after = await store.grant(f"{NS}/bot")
    assert after is not None and BOX.open(after.credential) == "sk_test_vendor_key_two"
    assert after.token_sha256 == before.token_sha256
    assert ("bot", "VendorKeyChanged") in [(n, e.reason) for n, e in events]


async def test_an_invalid_key_is_revoked_and_named_in_its_status(
    memo: kopf.Memo, store: RedisStore, events: list[tuple[str, Transition]]
) -> None:
    await key_event(memo, kopf.Reason.CREATE, KEY_SPEC)
    with pytest.raises(kopf.PermanentError, match=r"^spec\.expiresAt: "):
        await key_event(
            memo, kopf.Reason.UPDATE, {**KEY_SPEC, "expiresAt": "next tuesday"}, {"state": "Ready"}
        )
    assert await store.grant(f"{NS}/bot") is None
    assert ("bot", "Invalid") in [(n, e.reason) for n, e in events]


async def test_a_key_under_a_budget_reads_it_from_the_index_and_a_budget_change_recompiles_its_keys(
    memo: kopf.Memo, store: RedisStore
) -> None:
    policy = {**POLICY_SPEC, "budgetRef": {"name": "team"}}
    indexed = {(NS, "team"): [{"dailyCapUsd": "20"}]}
    await run(
        vault_key_changed,
        reason=kopf.Reason.CREATE,
        namespace=NS,
        name="bot",
        uid=UID,
        spec=KEY_SPEC,
        status={},
        body=body("VaultKey", "bot", KEY_SPEC),
        patch=kopf.Patch(),
        memo=memo,
        spend_policies={(NS, "refunds"): [policy]},
        spend_budgets=indexed,
    )
    g = await store.grant(f"{NS}/bot")
    assert g is not None and g.budget is not None and g.budget.daily_cap_micro_usd == 20_000_000

    common: dict[str, Any] = {
        "namespace": NS,
        "name": "team",
        "memo": memo,
        "spend_policies_by_budget": {(NS, "team"): [("refunds", policy)]},
        "vault_keys_by_policy": {(NS, "refunds"): [IndexedKey(NS, "bot", UID, KEY_SPEC)]},
    }
    raised = {(NS, "team"): [{"dailyCapUsd": "35"}]}
    budget = body("SpendBudget", "team", {"dailyCapUsd": "35"})
    patch = kopf.Patch()
    await run(
        spend_budget_changed, spec=budget.spec, body=budget, patch=patch, spend_budgets=raised, **common
    )
    g = await store.grant(f"{NS}/bot")
    assert g is not None and g.budget is not None and g.budget.daily_cap_micro_usd == 35_000_000
    assert (patch["status"]["dailyCapUsd"], patch["status"]["boundPolicies"]) == ("35.00", 1)

    await run(spend_budget_deleted, spend_budgets={}, **common)  # it has left the index
    assert await store.grant(f"{NS}/bot") is None  # fail closed
    assert memo.outcomes[f"{NS}/bot"].state == "BudgetMissing"
