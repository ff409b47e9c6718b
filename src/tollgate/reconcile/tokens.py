"""A VaultKey's vault token: kept in a Secret the key owns, minted only when there is none or when the
key is rotated. Knows nothing of kopf or of a Kubernetes client; the operator supplies TokenSecrets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tollgate.credentials import mint_token, token_digest
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.record import record


@record
class VaultKeyObject:
    """A VaultKey as the cluster holds it: identity (uid included, so its token Secret can name its
    owner) and the validated spec."""

    namespace: str
    name: str
    uid: str
    spec: VaultKeySpec

    @classmethod
    def parse(cls, namespace: str, name: str, uid: str, spec: Mapping[str, Any]) -> VaultKeyObject:
        """Raises pydantic.ValidationError naming the bad field."""
        return cls(namespace, name, uid, VaultKeySpec.model_validate(dict(spec)))

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def policy_id(self) -> str:
        return f"{self.namespace}/{self.spec.policy_ref.name}"

    @property
    def token_secret_name(self) -> str:
        return token_secret_name(self.name, self.spec)


def token_secret_name(key_name: str, spec: VaultKeySpec) -> str:
    return spec.token_secret_name or f"{key_name}-vault-token"


class TokenSecrets(Protocol):
    """Where vault tokens live for agents to mount (a Kubernetes Secret, data key `token`)."""

    async def read_token(self, key: VaultKeyObject) -> str | None:
        """The token in the key's token Secret; None when there is no such Secret or it belongs to
        another object (an earlier VaultKey of the same name, say), so its token must not be reused."""
        ...

    async def write_token(self, key: VaultKeyObject, token: str) -> None:
        """Create or overwrite the key's token Secret, owned by the key so deleting the key deletes it.
        Raises InvalidSpec if a Secret of that name exists that no VaultKey of this name owns."""
        ...


async def key_token_sha256(tokens: TokenSecrets, key: VaultKeyObject, *, mint: bool) -> tuple[str, bool]:
    """The digest to store for the key, and whether a new token was minted.

    Without `mint`, the token already in the Secret is kept: agents go on working across operator
    restarts and Redis flushes. With `mint` (a new key, or a rotation) a new token replaces it, and
    storing the new digest is what retires the old token."""
    if not mint:
        existing = await tokens.read_token(key)
        if existing:
            return token_digest(existing), False
    token = mint_token()
    await tokens.write_token(key, token)
    return token_digest(token), True
