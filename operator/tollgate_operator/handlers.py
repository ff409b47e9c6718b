"""kopf handlers: each a few lines over tollgate.reconcile, and nothing else. `kopf run -m
tollgate_operator.handlers` (or `python -m tollgate_operator`) loads this module; importing it registers
the startup, status and error-mapping pieces too.

Indices (kopf keeps them in memory from the watch streams): VaultKeys by their SpendPolicy and by their
vendor-key Secret, so a policy or Secret change re-applies exactly the keys that use it; and the
SpendPolicies themselves, so a key finds its policy without an API call; and SpendPolicies by the
SpendBudget they name, so a budget change re-applies the keys of exactly the policies under it; and the
SpendBudgets themselves, which reconcile reads when it compiles a grant (IndexedBudgets)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import kopf
from pydantic import ValidationError

import tollgate_operator.approvals  # registers the SpendApproval watch
import tollgate_operator.startup  # noqa: F401  (registers the startup and cleanup handlers)
from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.reconcile.context import ReconcileContext
from tollgate.reconcile.policies import (
    InvalidPolicy,
    PolicyLookup,
    apply_spend_policy,
    delete_spend_policy,
    parse_budget,
    parse_key,
    parse_policy,
    reconcile_key,
    reconcile_keys,
)
from tollgate.reconcile.status import Transition
from tollgate.reconcile.tokens import VaultKeyObject
from tollgate.reconcile.vault_keys import revoke_vault_key
from tollgate_operator.confinement import Action, ConfinementSettings, reconcile_namespace
from tollgate_operator.errors import kopf_errors
from tollgate_operator.kube_secrets import (
    SPEND_BUDGETS,
    SPEND_POLICIES,
    VAULT_KEYS,
    KubeUnavailable,
    object_ref,
    post_event,
)
from tollgate_operator.settings import OperatorSettings, confinement_settings
from tollgate_operator.status import publish_budget_status, publish_key_status, publish_policy_status


class IndexedKey(NamedTuple):
    namespace: str
    name: str
    uid: str
    spec: dict[str, Any]


Keys = kopf.Index[tuple[str, str], IndexedKey]
Policies = kopf.Index[tuple[str, str], dict[str, Any]]
PoliciesByBudget = kopf.Index[tuple[str, str], tuple[str, dict[str, Any]]]
Budgets = kopf.Index[tuple[str, str], dict[str, Any]]


# Index functions and filters name `namespace: str | None` as kopf's protocols do; ours are namespaced.


def _not_deleting(meta: kopf.Meta, **_: Any) -> bool:
    # A key or policy being deleted leaves the indices at once, before its delete handler runs.
    return not meta.get("deletionTimestamp")


# ---- indices --------------------------------------------------------------------------------------


@kopf.index(*VAULT_KEYS, when=_not_deleting)
def vault_keys_by_policy(
    namespace: str | None, name: str, uid: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], IndexedKey]:
    return _indexed(namespace, name, uid, spec, "policyRef")


@kopf.index(*VAULT_KEYS, when=_not_deleting)
def vault_keys_by_secret(
    namespace: str | None, name: str, uid: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], IndexedKey]:
    return _indexed(namespace, name, uid, spec, "vendorKeySecretRef")


@kopf.index(*SPEND_POLICIES, when=_not_deleting)
def spend_policies(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace or "", name): copy.deepcopy(dict(spec))}


@kopf.index(*SPEND_BUDGETS, when=_not_deleting)
def spend_budgets(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace or "", name): copy.deepcopy(dict(spec))}


@kopf.index(*SPEND_POLICIES, when=_not_deleting)
def spend_policies_by_budget(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    ref = spec.get("budgetRef")
    budget = ref.get("name") if isinstance(ref, Mapping) else None
    if not isinstance(budget, str):
        return {}
    return {(namespace or "", budget): (name, copy.deepcopy(dict(spec)))}


# ---- SpendBudget ----------------------------------------------------------------------------------


@kopf.on.resume(*SPEND_BUDGETS)
@kopf.on.create(*SPEND_BUDGETS)
@kopf.on.update(*SPEND_BUDGETS)
@kopf_errors
async def spend_budget_changed(
    namespace: str,
    name: str,
    spec: kopf.Spec,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    spend_policies_by_budget: PoliciesByBudget,
    vault_keys_by_policy: Keys,
    spend_budgets: Budgets,
    **_: Any,
) -> None:
    budget = parse_budget(spec)  # invalid: the keys under it are refused (BudgetMissing), fail closed
    policies = list(spend_policies_by_budget.get((namespace, name), []))
    await _reapply_policies(_ctx(memo, spend_budgets), memo, namespace, policies, vault_keys_by_policy)
    if isinstance(budget, InvalidPolicy):
        raise budget.error()
    await publish_budget_status(memo, body, patch, budget, bound_policies=len(policies))


@kopf.on.delete(*SPEND_BUDGETS)
@kopf_errors
async def spend_budget_deleted(
    namespace: str,
    name: str,
    memo: kopf.Memo,
    spend_policies_by_budget: PoliciesByBudget,
    vault_keys_by_policy: Keys,
    spend_budgets: Budgets,
    **_: Any,
) -> None:
    # Being deleted, the budget has left the index already: its keys are refused (BudgetMissing).
    policies = list(spend_policies_by_budget.get((namespace, name), []))
    await _reapply_policies(_ctx(memo, spend_budgets), memo, namespace, policies, vault_keys_by_policy)


async def _reapply_policies(
    ctx: ReconcileContext,
    memo: kopf.Memo,
    namespace: str,
    policies: list[tuple[str, dict[str, Any]]],
    vault_keys_by_policy: Keys,
) -> None:
    """Recompile the keys of every policy naming a budget that changed (its cap, its day, its existence)."""
    for policy_name, policy_spec in sorted(policies, key=lambda p: p[0]):
        results = await apply_spend_policy(
            ctx,
            parse_policy(policy_spec),
            _objects(vault_keys_by_policy.get((namespace, policy_name), [])),
            guard=memo.locks,
            is_live=memo.locks.is_live,
        )
        memo.outcomes.update({r.key_id: r.outcome for r in results})


# ---- SpendPolicy ----------------------------------------------------------------------------------


@kopf.on.resume(*SPEND_POLICIES)
@kopf.on.create(*SPEND_POLICIES)
@kopf.on.update(*SPEND_POLICIES)
@kopf_errors
async def spend_policy_changed(
    namespace: str,
    name: str,
    spec: kopf.Spec,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    vault_keys_by_policy: Keys,
    spend_budgets: Budgets,
    **_: Any,
) -> None:
    policy = parse_policy(spec)
    bound = list(vault_keys_by_policy.get((namespace, name), []))
    results = await apply_spend_policy(
        _ctx(memo, spend_budgets),
        policy,
        _objects(bound),
        guard=memo.locks,
        is_live=memo.locks.is_live,
    )
    memo.outcomes.update({r.key_id: r.outcome for r in results})
    if isinstance(policy, InvalidPolicy):
        raise policy.error()  # errors.py: Invalid condition and Event naming the field
    publish_policy_status(body, patch, policy, bound_keys=len(bound))


@kopf.on.delete(*SPEND_POLICIES)
@kopf_errors
async def spend_policy_deleted(
    namespace: str, name: str, memo: kopf.Memo, vault_keys_by_policy: Keys, **_: Any
) -> None:
    bound = [f"{k.namespace}/{k.name}" for k in vault_keys_by_policy.get((namespace, name), [])]
    results = await delete_spend_policy(memo.store, f"{namespace}/{name}", bound, guard=memo.locks)
    memo.outcomes.update({r.key_id: r.outcome for r in results})


# ---- VaultKey -------------------------------------------------------------------------------------


@kopf.on.resume(*VAULT_KEYS)
@kopf.on.create(*VAULT_KEYS)
@kopf.on.update(*VAULT_KEYS)
@kopf_errors
async def vault_key_changed(
    reason: kopf.Reason,
    namespace: str,
    name: str,
    uid: str,
    spec: kopf.Spec,
    status: kopf.Status,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    spend_policies: Policies,
    spend_budgets: Budgets,
    **_: Any,
) -> None:
    key_id = f"{namespace}/{name}"
    async with memo.locks(key_id):
        memo.outcomes.pop(key_id, None)  # the status timer waits for this reconcile's outcome
        key = await parse_key(memo.store, namespace, name, uid, spec)
        # A new key gets a token; so does a changed spec.tokenRotation (status records the last one done).
        rotate = reason != kopf.Reason.CREATE and key.spec.token_rotation != status.get("tokenRotation")
        result = await reconcile_key(
            _ctx(memo, spend_budgets),
            key,
            _policy(spend_policies, key.policy_id),
            mint=reason == kopf.Reason.CREATE or rotate,
        )
    memo.outcomes[key_id] = result.outcome
    if result.minted:
        where = f"Secret {namespace}/{key.token_secret_name} (key `token`)"
        post_event(
            body,
            Transition("Normal", "TokenRotated", f"new vault token in {where}; the previous one is refused")
            if rotate
            else Transition("Normal", "TokenMinted", f"vault token in {where}"),
        )
    await publish_key_status(
        memo,
        body,
        patch,
        result.outcome,
        token_secret_name=key.token_secret_name,
        token_rotation=key.spec.token_rotation,
    )


@kopf.on.delete(*VAULT_KEYS)
@kopf_errors
async def vault_key_deleted(namespace: str, name: str, uid: str, memo: kopf.Memo, **_: Any) -> None:
    key_id = f"{namespace}/{name}"
    async with memo.locks(key_id):
        memo.locks.deleted(uid)
        await revoke_vault_key(memo.store, namespace=namespace, name=name)
    memo.outcomes.pop(key_id, None)


# ---- vendor-key Secrets ---------------------------------------------------------------------------


def _is_vendor_key(namespace: str, name: str, vault_keys_by_secret: Keys, **_: Any) -> bool:
    return (namespace, name) in vault_keys_by_secret


# kopf's filter protocol cannot know the index kwarg this filter names.
@kopf.on.event("v1", "secrets", when=_is_vendor_key)  # type: ignore[arg-type]
@kopf_errors
async def vendor_key_changed(
    type: str | None,
    namespace: str,
    name: str,
    memo: kopf.Memo,
    vault_keys_by_secret: Keys,
    spend_policies: Policies,
    spend_budgets: Budgets,
    **_: Any,
) -> None:
    if type is None:  # the initial listing: the keys' resume handlers apply them anyway
        return
    users = list(vault_keys_by_secret.get((namespace, name), []))
    results = await reconcile_keys(
        _ctx(memo, spend_budgets),
        _objects(users),
        lambda key: _policy(spend_policies, key.policy_id),
        guard=memo.locks,
        is_live=memo.locks.is_live,
    )
    memo.outcomes.update({r.key_id: r.outcome for r in results})
    for key in users:
        post_event(
            object_ref("VaultKey", key.namespace, key.name, key.uid),
            Transition(
                "Normal", "VendorKeyChanged", f"Secret {namespace}/{name} changed ({type}); grant recompiled"
            ),
        )


# ---- agent namespaces: the egress NetworkPolicy -----------------------------------------------------
# Namespace events (label added or removed) and events of the policies themselves (deleted or edited)
# both end in reconcile_namespace; memo.namespace_labels (kept from the namespace watch) tells the
# second kind, and the periodic resync, what each namespace asks for.

CONFINEMENT = confinement_settings()

if CONFINEMENT is not None:

    @kopf.on.event("v1", "namespaces")
    async def namespace_changed(
        type: str | None, name: str, labels: kopf.Labels, memo: kopf.Memo, logger: kopf.Logger, **_: Any
    ) -> None:
        known: dict[str, dict[str, str]] = memo.namespace_labels
        if type == "DELETED":
            known.pop(name, None)
            return
        known[name] = dict(labels)
        await confine(memo, name, known[name], logger)

    # By name, not by label: an edit that strips the label must still be seen.
    @kopf.on.event("networking.k8s.io", "v1", "networkpolicies")
    async def agents_policy_changed(
        type: str | None, namespace: str | None, name: str, memo: kopf.Memo, logger: kopf.Logger, **_: Any
    ) -> None:
        labels = memo.namespace_labels.get(namespace or "")
        if type is None or labels is None or name != memo.settings.operator.confinement.policy_name:
            return  # the initial listing (namespace events cover it), or a namespace not seen yet
        await confine(memo, namespace or "", labels, logger)


async def confine(memo: kopf.Memo, namespace: str, labels: dict[str, str], logger: kopf.Logger) -> None:
    """One namespace's policy made right; the API being away is logged, and the namespace is tried
    again at the next resync (memo.confine_retry), whether it was to be confined or released."""
    settings: OperatorSettings = memo.settings.operator
    confinement: ConfinementSettings | None = settings.confinement
    if confinement is None or (settings.namespaces and namespace not in settings.namespaces):
        return  # not this operator's namespace: its RBAC reaches no NetworkPolicy there
    retry: set[str] = memo.confine_retry
    try:
        action = await reconcile_namespace(memo.secrets, namespace, labels, confinement)
    except KubeUnavailable as exc:
        retry.add(namespace)
        logger.warning(f"Namespace {namespace}: egress policy not reconciled, retrying at resync: {exc}")
        return
    retry.discard(namespace)
    if action in (Action.CREATED, Action.RESTORED, Action.REMOVED):
        logger.info(f"Namespace {namespace}: egress NetworkPolicy {confinement.policy_name} {action.value}")


# ---- helpers --------------------------------------------------------------------------------------


def _indexed(
    namespace: str | None, name: str, uid: str, spec: Mapping[str, Any], ref: str
) -> dict[tuple[str, str], IndexedKey]:
    target = spec.get(ref)
    target_name = target.get("name") if isinstance(target, Mapping) else None
    if not isinstance(target_name, str):
        return {}  # an invalid key: its own handler reports it
    ns = namespace or ""
    return {(ns, target_name): IndexedKey(ns, name, uid, copy.deepcopy(dict(spec)))}


def _objects(entries: Iterable[IndexedKey]) -> list[VaultKeyObject]:
    """Index entries as key objects; invalid ones are skipped (their own handler reports them)."""
    out = []
    for e in entries:
        try:
            out.append(VaultKeyObject.parse(e.namespace, e.name, e.uid, e.spec))
        except ValidationError:
            continue
    return out


class IndexedBudgets:
    """The SpendBudgets as kopf's index holds them (complete before any handler runs, so a key under a
    budget is never refused for a budget not yet seen at start-up); an invalid one reads as missing."""

    def __init__(self, index: Budgets) -> None:
        self._index = index

    async def read(self, namespace: str, name: str) -> SpendBudgetSpec | None:
        for spec in self._index.get((namespace, name), []):
            budget = parse_budget(spec)
            return budget if isinstance(budget, SpendBudgetSpec) else None
        return None


def _ctx(memo: kopf.Memo, spend_budgets: Budgets) -> ReconcileContext:
    return dataclasses.replace(memo.reconcile, budgets=IndexedBudgets(spend_budgets))


def _policy(spend_policies: Policies, policy_id: str) -> PolicyLookup:
    namespace, _, name = policy_id.partition("/")
    for spec in spend_policies.get((namespace, name), []):
        return parse_policy(spec)
    return None
