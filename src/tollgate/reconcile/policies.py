"""SpendPolicies and the VaultKeys bound to them → Store. A grant embeds its compiled policy, so a
policy change is every bound key applied again, and a policy's deletion is every bound key revoked.
Knows nothing of kopf: the operator, local mode and tests call these with a ReconcileContext of their own."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from pydantic import ValidationError

from tollgate.credentials import token_digest
from tollgate.errors import InvalidSpec
from tollgate.policy.manifests import field_errors
from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.reconcile.context import ReconcileContext
from tollgate.reconcile.tokens import VaultKeyObject, key_token_sha256
from tollgate.reconcile.vault_keys import Outcome, apply_vault_key
from tollgate.record import record
from tollgate.store.base import GrantStore

# Serialises work on one key id (the operator passes per-key locks: a policy fan-out, a Secret change,
# a resync and the key's own handler must not interleave a revoke with an apply).
KeyGuard = Callable[[str], AbstractAsyncContextManager[object]]


# Whether a key object may still be applied: False once its deletion has been handled, so work that
# started before the deletion (a fan-out, a resync) cannot bring its grant back.
LiveCheck = Callable[["VaultKeyObject"], bool]


def no_guard(key_id: str) -> AbstractAsyncContextManager[object]:
    return contextlib.nullcontext()


def always_live(key: VaultKeyObject) -> bool:
    return True


@record
class InvalidPolicy:
    """A SpendPolicy that exists but cannot be compiled; `problems` name its fields."""

    problems: list[str]

    @property
    def message(self) -> str:
        return "; ".join(self.problems)

    def error(self) -> InvalidSpec:
        """The problems as one InvalidSpec, named by the first bad field."""
        field, _, first = self.problems[0].partition(": ")
        return InvalidSpec(field, "; ".join([first, *self.problems[1:]]))


# What a key finds when it looks up its policy: the spec, an invalid one, or nothing.
PolicyLookup = SpendPolicySpec | InvalidPolicy | None


def parse_policy(spec: Mapping[str, Any] | None) -> SpendPolicySpec | InvalidPolicy:
    try:
        return SpendPolicySpec.model_validate(dict(spec or {}))
    except ValidationError as exc:
        return InvalidPolicy(field_errors(exc, "spec"))


def parse_budget(spec: Mapping[str, Any] | None) -> SpendBudgetSpec | InvalidPolicy:
    """A SpendBudget's spec, or its problems (an invalid budget refuses every key under it)."""
    try:
        return SpendBudgetSpec.model_validate(dict(spec or {}))
    except ValidationError as exc:
        return InvalidPolicy(field_errors(exc, "spec"))


async def parse_key(
    store: GrantStore, namespace: str, name: str, uid: str, spec: Mapping[str, Any]
) -> VaultKeyObject:
    """The key's object. An invalid spec revokes its grant first (fail closed: a key whose spec cannot
    be read must not keep working under its old one), then raises the pydantic ValidationError."""
    try:
        return VaultKeyObject.parse(namespace, name, uid, spec)
    except ValidationError:
        await store.revoke(f"{namespace}/{name}")
        raise


@record
class KeyOutcome:
    key_id: str
    outcome: Outcome
    minted: bool = False  # a new token was written to the key's Secret


async def reconcile_key(
    ctx: ReconcileContext,
    key: VaultKeyObject,
    policy: PolicyLookup,
    *,
    mint: bool = False,
) -> KeyOutcome:
    """The key's own handler: make the store hold exactly what `key` (with `policy`) allows, reusing
    the token in its Secret unless `mint`, and minting one when there is none. The token Secret is
    written even while the policy or vendor key is missing, so an agent pod can mount it and starts
    working the moment they appear.

    Raises InvalidSpec (after revoking: fail closed) when the token Secret cannot be written."""
    try:
        digest, minted = await key_token_sha256(ctx.tokens, key, mint=mint)
    except InvalidSpec:
        await ctx.store.revoke(key.id)
        raise
    return await _apply(ctx, key, policy, digest, minted=minted)


async def reapply_key(
    ctx: ReconcileContext,
    key: VaultKeyObject,
    policy: PolicyLookup,
) -> KeyOutcome | None:
    """Apply `key` again with the token its Secret already holds (a policy or vendor-key change, a
    resync). None, and nothing written, when it holds none: only the key's own handler mints, so work
    racing a new key's create handler cannot hand out a second token behind the agent's back."""
    token = await ctx.tokens.read_token(key)
    if not token:
        return None
    return await _apply(ctx, key, policy, token_digest(token), minted=False)


async def _apply(
    ctx: ReconcileContext,
    key: VaultKeyObject,
    policy: PolicyLookup,
    digest: str,
    *,
    minted: bool,
) -> KeyOutcome:
    if isinstance(policy, InvalidPolicy):
        await ctx.store.revoke(key.id)
        return KeyOutcome(
            key.id,
            Outcome(
                "PolicyMissing",
                f"SpendPolicy {key.policy_id} is invalid ({policy.message}); the key is refused until it is fixed",
            ),
            minted,
        )
    outcome = await apply_vault_key(
        ctx, namespace=key.namespace, name=key.name, spec=key.spec, policy=policy, token_sha256=digest
    )
    return KeyOutcome(key.id, outcome, minted)


async def reconcile_keys(
    ctx: ReconcileContext,
    keys: Iterable[VaultKeyObject],
    policy_for: Callable[[VaultKeyObject], PolicyLookup],
    *,
    guard: KeyGuard = no_guard,
    is_live: LiveCheck = always_live,
) -> list[KeyOutcome]:
    """Apply each key again with the token it holds (see reapply_key). Keys whose deletion was handled,
    and keys with no token yet (their create handler is still to run), are skipped."""
    results = []
    for key in sorted(keys, key=lambda k: k.id):
        async with guard(key.id):
            if is_live(key) and (done := await reapply_key(ctx, key, policy_for(key))):
                results.append(done)
    return results


async def apply_spend_policy(
    ctx: ReconcileContext,
    policy: PolicyLookup,
    keys: Iterable[VaultKeyObject],
    *,
    guard: KeyGuard = no_guard,
    is_live: LiveCheck = always_live,
) -> list[KeyOutcome]:
    """A SpendPolicy was created, changed or resumed: recompile every key bound to it. An invalid
    policy revokes them all (its status says why; theirs say PolicyMissing)."""
    return await reconcile_keys(ctx, keys, lambda _key: policy, guard=guard, is_live=is_live)


async def delete_spend_policy(
    store: GrantStore, policy_id: str, key_ids: Iterable[str], *, guard: KeyGuard = no_guard
) -> list[KeyOutcome]:
    """A SpendPolicy is gone: every key bound to it is refused from its next call."""
    results = []
    for key_id in sorted(key_ids):
        async with guard(key_id):
            await store.revoke(key_id)
        results.append(
            KeyOutcome(
                key_id,
                Outcome("PolicyMissing", f"SpendPolicy {policy_id} was deleted; the key is refused"),
            )
        )
    return results
