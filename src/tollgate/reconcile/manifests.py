"""Apply a whole set of manifests (local mode): every key gets a fresh token; grants with no manifest
behind them are revoked, so the store holds exactly what the files say.

Each key goes through reconcile_key, the operator's own path, with the manifests' Secrets as the vendor
keys and an in-memory token holder in place of the token Secrets: local mode runs the cluster's code."""

from __future__ import annotations

from collections.abc import Mapping

from tollgate.credentials import CredentialBox
from tollgate.policy.manifests import Manifests
from tollgate.reconcile.budgets import HeldBudgets
from tollgate.reconcile.context import ReconcileContext
from tollgate.reconcile.policies import reconcile_key
from tollgate.reconcile.secrets import ManifestSecretReader
from tollgate.reconcile.tokens import VaultKeyObject
from tollgate.reconcile.vault_keys import Outcome
from tollgate.store.base import GrantStore


class HeldTokens:
    """Token "Secrets" held in memory: what local mode was handed back across restarts, and what it mints."""

    def __init__(self, kept: Mapping[str, str]) -> None:
        self.tokens = dict(kept)

    async def read_token(self, key: VaultKeyObject) -> str | None:
        return self.tokens.get(key.id)

    async def write_token(self, key: VaultKeyObject, token: str) -> None:
        self.tokens[key.id] = token


async def apply_manifests(
    store: GrantStore,
    box: CredentialBox,
    manifests: Manifests,
    *,
    keep_tokens: Mapping[str, str] | None = None,
) -> dict[str, tuple[str, Outcome]]:
    """Returns key id → (vault token, outcome). A key in `keep_tokens` keeps that token (local mode across
    restarts); every other key gets a fresh one. Tokens are returned, never stored."""
    tokens = HeldTokens({k: v for k, v in (keep_tokens or {}).items() if v and k in manifests.keys})
    budgets = HeldBudgets({b.id: b.spec for b in manifests.budgets.values()})
    ctx = ReconcileContext(store, box, ManifestSecretReader(manifests.secrets), tokens, budgets)
    result: dict[str, tuple[str, Outcome]] = {}
    for key_id, key in sorted(manifests.keys.items()):
        policy = manifests.policies.get(key.policy_id)
        # A manifest has no uid; the key id stands in (it names the token's owner only in a cluster).
        obj = VaultKeyObject(key.namespace, key.name, key_id, key.spec)
        done = await reconcile_key(ctx, obj, policy.spec if policy else None)
        result[key_id] = (tokens.tokens[key_id], done.outcome)
    for orphan in await store.grant_ids() - set(manifests.keys):
        await store.revoke(orphan)
    return result
