"""Apply a whole set of manifests (local mode): every key gets a fresh token; grants with no manifest
behind them are revoked, so the store holds exactly what the files say."""

from __future__ import annotations

from collections.abc import Mapping

from tollgate.credentials import CredentialBox, mint_token, token_digest
from tollgate.policy.manifests import Manifests
from tollgate.reconcile.secrets import ManifestSecretReader
from tollgate.reconcile.vault_keys import Outcome, apply_vault_key
from tollgate.store.base import Store


async def apply_manifests(
    store: Store, box: CredentialBox, manifests: Manifests, *, keep_tokens: Mapping[str, str] | None = None
) -> dict[str, tuple[str, Outcome]]:
    """Returns key id → (vault token, outcome). A key in `keep_tokens` keeps that token (local mode across
    restarts); every other key gets a fresh one. Tokens are returned, never stored."""
    secrets = ManifestSecretReader(manifests.secrets)
    result: dict[str, tuple[str, Outcome]] = {}
    for key_id, key in sorted(manifests.keys.items()):
        token = (keep_tokens or {}).get(key_id) or mint_token()
        policy = manifests.policies.get(key.policy_id)
        outcome = await apply_vault_key(
            store,
            box,
            secrets,
            namespace=key.namespace,
            name=key.name,
            spec=key.spec,
            policy=policy.spec if policy else None,
            token_sha256=token_digest(token),
        )
        result[key_id] = (token, outcome)
    for orphan in await store.grant_ids() - set(manifests.keys):
        await store.revoke(orphan)
    return result
