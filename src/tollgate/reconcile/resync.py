"""Full resync: make the store hold exactly what the cluster says. Keys with no grant (after a Redis
flush, say) get theirs back with the token already in their Secret; grants with no live VaultKey
behind them are revoked. Knows nothing of kopf: the caller supplies the listing of the cluster."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import field, replace

from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.reconcile.budgets import HeldBudgets
from tollgate.reconcile.context import ReconcileContext
from tollgate.reconcile.policies import (
    KeyGuard,
    KeyOutcome,
    LiveCheck,
    PolicyLookup,
    always_live,
    no_guard,
    reapply_key,
)
from tollgate.reconcile.tokens import VaultKeyObject
from tollgate.record import record


@record
class ClusterState:
    """What the cluster holds. `keys` are the VaultKeys that should work (valid, not being deleted);
    `policies` maps policy id to its spec (or why it is invalid); `budgets` the valid SpendBudgets by id.
    `namespaces` is the resync's scope: None for the whole cluster, else only grants of keys in these
    namespaces are considered."""

    keys: list[VaultKeyObject]
    policies: dict[str, PolicyLookup]
    namespaces: frozenset[str] | None = None
    budgets: dict[str, SpendBudgetSpec] = field(default_factory=dict)

    def in_scope(self, key_id: str) -> bool:
        return self.namespaces is None or key_id.partition("/")[0] in self.namespaces


@record
class ResyncReport:
    restored: list[KeyOutcome] = field(default_factory=list)  # keys that had no grant and were applied
    revoked: list[str] = field(default_factory=list)  # grants with no live key behind them
    # keys with no grant and no token yet: their own handler mints the token and writes the grant
    unminted: list[str] = field(default_factory=list)


async def resync(
    ctx: ReconcileContext,
    list_cluster: Callable[[], Awaitable[ClusterState]],
    *,
    guard: KeyGuard = no_guard,
    is_live: LiveCheck = always_live,
    all_keys: bool = False,
) -> ResyncReport:
    """Restore missing grants (every grant with `all_keys`) with the tokens agents already hold, and
    revoke orphans. A key with no token is left to its own handler, never minted here.

    The store is read before the cluster is listed: a key created in between then has its grant
    written after that read and is never mistaken for an orphan, while a key deleted in between is
    revoked either way. A listing that fails raises, and nothing is revoked."""
    stored = await ctx.store.grant_ids()
    cluster = await list_cluster()
    ctx = replace(ctx, budgets=HeldBudgets(cluster.budgets))  # the budgets as listed with the keys
    live = {k.id for k in cluster.keys}
    report = ResyncReport()
    for key in sorted(cluster.keys, key=lambda k: k.id):
        async with guard(key.id):
            if not is_live(key) or (not all_keys and await ctx.store.grant(key.id) is not None):
                continue
            policy = cluster.policies.get(key.policy_id)
            done = await reapply_key(ctx, key, policy)
            if done is None:
                report.unminted.append(key.id)
            else:
                report.restored.append(done)
    for orphan in sorted(stored - live):
        if not cluster.in_scope(orphan):
            continue
        async with guard(orphan):
            await ctx.store.revoke(orphan)
        report.revoked.append(orphan)
    return report
