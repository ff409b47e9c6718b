"""Apply and revoke VaultKeys: the functions kopf handlers and local mode both call."""

from __future__ import annotations

from tollgate.credentials import fingerprint
from tollgate.errors import SecretNotFound
from tollgate.policy.compile import compile_grant
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.reconcile.context import ReconcileContext
from tollgate.record import record
from tollgate.store.base import GrantStore


@record
class Outcome:
    """What the resource's status should say."""

    state: str  # Ready | Revoked | PolicyMissing | BudgetMissing | SecretMissing
    message: str
    grant_version: str | None = None

    @property
    def ready(self) -> bool:
        return self.state == "Ready"


async def apply_vault_key(
    ctx: ReconcileContext,
    *,
    namespace: str,
    name: str,
    spec: VaultKeySpec,
    policy: SpendPolicySpec | None,
    token_sha256: str,
) -> Outcome:
    """Compile and store the key's grant (sealed by ctx.box, its vendor key read from ctx.secrets, its
    budget from ctx.budgets). Without its policy, budget or vendor key the key must not work, so any
    previous grant is revoked rather than left standing."""
    store = ctx.store
    key_id = f"{namespace}/{name}"
    policy_id = f"{namespace}/{spec.policy_ref.name}"
    if policy is None:
        await store.revoke(key_id)
        return Outcome(
            "PolicyMissing", f"SpendPolicy {policy_id} does not exist; the key is refused until it does"
        )
    budget = None
    if policy.budget_ref is not None:
        budget_id = f"{namespace}/{policy.budget_ref.name}"
        found = await ctx.budgets.read(namespace, policy.budget_ref.name)
        if found is None:  # fail closed: a key never runs outside the budget its policy names
            await store.revoke(key_id)
            return Outcome(
                "BudgetMissing",
                f"SpendBudget {budget_id} (SpendPolicy {policy_id} spec.budgetRef) does not exist or is "
                "invalid; the key is refused until it does",
            )
        budget = (budget_id, found)
    ref = spec.vendor_key_secret_ref
    try:
        vendor_key = await ctx.secrets.read(namespace, ref.name, ref.key)
    except SecretNotFound as exc:
        await store.revoke(key_id)
        return Outcome("SecretMissing", f"{exc}; the key is refused until it exists")
    grant = compile_grant(
        key_id=key_id,
        key=spec,
        policy_id=policy_id,
        policy=policy,
        token_sha256=token_sha256,
        sealed_credential=ctx.box.seal(vendor_key),
        credential_fingerprint=fingerprint(vendor_key),
        budget=budget,
    )
    await store.put_grant(grant)
    return Outcome("Ready", f"bound to SpendPolicy {policy_id}", grant.version)


async def revoke_vault_key(store: GrantStore, *, namespace: str, name: str) -> Outcome:
    removed = await store.revoke(f"{namespace}/{name}")
    return Outcome("Revoked", "revoked" if removed else "nothing to revoke")
