"""tollgate.reconcile.resync against a real redis-server: after a flush the cluster's grants come back
with the tokens agents already hold; grants with no VaultKey behind them are revoked; a key created
while the cluster is being listed is never taken for an orphan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from tests.builders import spend_policy
from tests.integration.test_reconcile_policies import BOX, MemoryTokens, key, vendor_secrets

from tollgate.credentials import token_digest
from tollgate.errors import TollgateError
from tollgate.reconcile.context import ReconcileContext
from tollgate.reconcile.policies import reconcile_key
from tollgate.reconcile.resync import ClusterState, resync
from tollgate.reconcile.tokens import VaultKeyObject
from tollgate.store.redis import RedisStore

POLICIES = {"agents/refunds": spend_policy()}


def listing(
    *keys: VaultKeyObject, namespaces: frozenset[str] | None = None
) -> Callable[[], Awaitable[ClusterState]]:
    async def list_cluster() -> ClusterState:
        return ClusterState(list(keys), dict(POLICIES), namespaces)

    return list_cluster


async def test_after_a_flush_every_grant_comes_back_with_the_token_already_held(
    store: RedisStore,
) -> None:
    tokens, keys = MemoryTokens(), [key("a", "uid-a"), key("b", "uid-b")]
    for k in keys:
        await reconcile_key(
            ReconcileContext(store, BOX, vendor_secrets(), tokens), k, spend_policy(), mint=True
        )
    for k in keys:
        await store.revoke(k.id)  # what FLUSHALL leaves, as far as grants go

    report = await resync(ReconcileContext(store, BOX, vendor_secrets(), tokens), listing(*keys))

    assert [(r.key_id, r.outcome.state, r.minted) for r in report.restored] == [
        ("agents/a", "Ready", False),
        ("agents/b", "Ready", False),
    ]
    for k in keys:
        grant = await store.grant(k.id)
        assert grant is not None and grant.token_sha256 == token_digest(tokens.token(k))
    assert report.revoked == []


async def test_grants_with_no_vault_key_behind_them_are_revoked(store: RedisStore) -> None:
    tokens, kept, ghost = MemoryTokens(), key("kept", "uid-k"), key("ghost", "uid-g")
    for k in (kept, ghost):
        await reconcile_key(
            ReconcileContext(store, BOX, vendor_secrets(), tokens), k, spend_policy(), mint=True
        )
    report = await resync(ReconcileContext(store, BOX, vendor_secrets(), tokens), listing(kept))
    assert report.revoked == ["agents/ghost"] and report.restored == []
    assert await store.grant_ids() == {"agents/kept"}


async def test_a_key_created_while_the_cluster_is_listed_is_not_taken_for_an_orphan(
    store: RedisStore,
) -> None:
    tokens, newcomer = MemoryTokens(), key("new", "uid-n")

    async def list_cluster() -> ClusterState:
        # its handler writes the grant after the store was read, and the listing predates it
        await reconcile_key(
            ReconcileContext(store, BOX, vendor_secrets(), tokens), newcomer, spend_policy(), mint=True
        )
        return ClusterState([], dict(POLICIES))

    report = await resync(ReconcileContext(store, BOX, vendor_secrets(), tokens), list_cluster)
    assert report.revoked == []
    assert await store.grant(newcomer.id) is not None


async def test_grants_outside_the_operators_namespaces_are_left_alone(store: RedisStore) -> None:
    tokens, other = MemoryTokens(), key("elsewhere", "uid-e")
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), other, spend_policy(), mint=True
    )
    report = await resync(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), listing(namespaces=frozenset({"payments"}))
    )
    assert report.revoked == []
    assert await store.grant_ids() == {"agents/elsewhere"}


async def test_a_failed_listing_revokes_nothing(store: RedisStore) -> None:
    tokens, bot = MemoryTokens(), key()
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )

    async def api_down() -> ClusterState:
        raise TollgateError("the API server is away")

    with pytest.raises(TollgateError):
        await resync(ReconcileContext(store, BOX, vendor_secrets(), tokens), api_down)
    assert await store.grant_ids() == {bot.id}


async def test_current_grants_are_left_alone_unless_every_key_is_asked_for(store: RedisStore) -> None:
    tokens, bot = MemoryTokens(), key()
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    quiet = await resync(ReconcileContext(store, BOX, vendor_secrets(), tokens), listing(bot))
    assert quiet.restored == []
    full = await resync(
        ReconcileContext(store, BOX, vendor_secrets("sk_test_new"), tokens), listing(bot), all_keys=True
    )
    assert [r.key_id for r in full.restored] == [bot.id]
    grant = await store.grant(bot.id)
    assert grant is not None and BOX.open(grant.credential) == "sk_test_new"


async def test_a_key_without_its_policy_stays_revoked_and_says_why(store: RedisStore) -> None:
    tokens, stray = MemoryTokens(), key(policyRef={"name": "nowhere"})
    # its handler wrote the token Secret, ready for when the policy exists
    await reconcile_key(ReconcileContext(store, BOX, vendor_secrets(), tokens), stray, None, mint=True)
    report = await resync(ReconcileContext(store, BOX, vendor_secrets(), tokens), listing(stray))
    assert [r.outcome.state for r in report.restored] == ["PolicyMissing"]
    assert "agents/nowhere" in report.restored[0].outcome.message
    assert await store.grant_ids() == set()
    assert tokens.writes == 1


async def test_a_key_whose_handler_has_not_minted_its_token_yet_is_left_to_that_handler(
    store: RedisStore,
) -> None:
    # A resync racing a new key's create handler must not mint a second token: the agent would
    # mount whichever Secret write came first and hold a token the grant no longer matches.
    tokens, fresh = MemoryTokens(), key("fresh", "uid-f")
    report = await resync(ReconcileContext(store, BOX, vendor_secrets(), tokens), listing(fresh))
    assert report.unminted == [fresh.id] and report.restored == [] and report.revoked == []
    assert tokens.writes == 0 and await store.grant(fresh.id) is None


async def test_a_key_under_a_budget_comes_back_under_the_budget_the_cluster_lists(store: RedisStore) -> None:
    from tests.builders import spend_budget

    tokens, bot = MemoryTokens(), key("a", "uid-a")
    under = spend_policy(budgetRef={"name": "team"})
    ctx = ReconcileContext(store, BOX, vendor_secrets(), tokens)
    first = await reconcile_key(ctx, bot, under, mint=True)
    assert first.outcome.state == "BudgetMissing"  # this context knows no budget: refused, not unbudgeted

    async def list_cluster() -> ClusterState:
        return ClusterState([bot], {"agents/refunds": under}, None, {"agents/team": spend_budget()})

    report = await resync(ctx, list_cluster)
    assert [(r.key_id, r.outcome.state) for r in report.restored] == [("agents/a", "Ready")]
    g = await store.grant("agents/a")
    assert g is not None and g.budget_id == "agents/team"
