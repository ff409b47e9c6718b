"""tollgate.reconcile.vault_keys and .manifests against a real redis-server: a key's grant follows its
spec (suspended and resumed, rotated), a revoke retires its token, and local mode's whole-set apply
leaves exactly the keys its manifests name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import redis.asyncio as aioredis
from tests.builders import NOW, spend_policy, vault_key
from tests.integration.test_reconcile_policies import BOX, NS, VENDOR_KEY, MemoryTokens, key, vendor_secrets

from tollgate.credentials import token_digest
from tollgate.local.processes import ManagedProcess
from tollgate.policy.manifests import KeyObject, Manifests, PolicyObject, SecretObject
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.reconcile.context import ReconcileContext
from tollgate.reconcile.manifests import apply_manifests
from tollgate.reconcile.policies import reconcile_key
from tollgate.reconcile.secrets import ManifestSecretReader, SecretReader
from tollgate.reconcile.status import read_key_report
from tollgate.reconcile.vault_keys import Outcome, apply_vault_key, revoke_vault_key
from tollgate.store import keys
from tollgate.store.redis import RETIRED_TOKEN_TTL_S, RedisStore


@pytest.fixture
async def raw(redis_server: ManagedProcess) -> AsyncIterator[aioredis.Redis]:
    """The same redis-server as `store`, read directly."""
    assert redis_server.url
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def test_suspending_a_key_keeps_its_token_and_refuses_it_until_resumed(store: RedisStore) -> None:
    tokens, bot = MemoryTokens(), key()
    ready = await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    token = tokens.token(bot)

    paused = await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), key(suspended=True), spend_policy()
    )
    grant = await store.grant(bot.id)
    assert grant is not None and grant.suspended and grant.token_sha256 == token_digest(token)
    assert paused.outcome.grant_version != ready.outcome.grant_version  # cached copies are dropped
    assert (await read_key_report(store, bot.id, paused.outcome, NOW)).state == "Suspended"

    resumed = await reconcile_key(ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy())
    grant = await store.grant(bot.id)
    assert grant is not None and not grant.suspended and grant.token_sha256 == token_digest(token)
    assert (await read_key_report(store, bot.id, resumed.outcome, NOW)).state == "Ready"
    assert tokens.writes == 1 and not paused.minted and not resumed.minted


async def test_a_rotation_retires_the_old_token_so_it_is_refused_as_revoked_then_forgotten(
    store: RedisStore, raw: aioredis.Redis
) -> None:
    tokens, bot = MemoryTokens(), key(tokenRotation="1")
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    old = tokens.token(bot)
    rotated = await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens),
        key(tokenRotation="2"),
        spend_policy(),
        mint=True,
    )
    new = tokens.token(bot)
    assert rotated.minted and new != old
    grant = await store.grant(bot.id)
    assert grant is not None and grant.token_sha256 == token_digest(new)
    assert await raw.ttl(keys.token(token_digest(old))) == RETIRED_TOKEN_TTL_S
    assert await raw.ttl(keys.token(token_digest(new))) == -1  # the live token never ages out


async def apply(
    store: RedisStore, policy: SpendPolicySpec | None, secrets: SecretReader | None = None
) -> Outcome:
    return await apply_vault_key(
        ReconcileContext(store, BOX, secrets or vendor_secrets(), MemoryTokens()),
        namespace=NS,
        name="bot",
        spec=vault_key(),
        policy=policy,
        token_sha256=token_digest("tgk_one"),
    )


async def test_a_key_without_its_policy_or_vendor_key_loses_the_grant_it_had(store: RedisStore) -> None:
    ready = await apply(store, spend_policy())
    assert ready.ready and ready.grant_version

    no_policy = await apply(store, None)
    assert no_policy.state == "PolicyMissing" and "agents/refunds" in no_policy.message
    assert await store.grant(f"{NS}/bot") is None

    await apply(store, spend_policy())
    no_key = ManifestSecretReader({f"{NS}/stripe": SecretObject(NS, "stripe", {"other": "x"})})
    no_secret = await apply(store, spend_policy(), no_key)
    assert no_secret.state == "SecretMissing" and "'api-key'" in no_secret.message
    assert await store.grant(f"{NS}/bot") is None


async def test_the_vendor_key_and_the_token_are_never_stored_in_clear(
    store: RedisStore, raw: aioredis.Redis
) -> None:
    await apply(store, spend_policy())
    names = [k for k in await raw.keys("*") if k != b"tg:grants"]
    dump = b"".join(v for v in await raw.mget(names) if isinstance(v, bytes))
    assert dump and VENDOR_KEY.encode() not in dump and b"tgk_one" not in dump


async def test_revoking_a_key_refuses_its_token_and_says_so_only_once(store: RedisStore) -> None:
    tokens, bot = MemoryTokens(), key()
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    first = await revoke_vault_key(store, namespace=NS, name="bot")
    assert (first.state, first.message) == ("Revoked", "revoked")
    assert await store.grant(bot.id) is None and bot.id not in await store.grant_ids()
    # the token still names its key, so its holder is told "revoked", not "unknown"
    assert await store.key_for_token(token_digest(tokens.token(bot))) == bot.id
    again = await revoke_vault_key(store, namespace=NS, name="bot")
    assert (again.state, again.message) == ("Revoked", "nothing to revoke")


def manifests(*key_names: str) -> Manifests:
    policy = PolicyObject(NS, "refunds", spend_policy())
    return Manifests(
        policies={policy.id: policy},
        keys={f"{NS}/{n}": KeyObject(NS, n, vault_key()) for n in key_names},
        secrets={f"{NS}/stripe": SecretObject(NS, "stripe", {"api-key": VENDOR_KEY})},
    )


async def test_local_mode_applies_exactly_the_keys_its_manifests_name(store: RedisStore) -> None:
    first = await apply_manifests(store, BOX, manifests("a", "b"))
    assert {k: o.state for k, (_, o) in first.items()} == {"agents/a": "Ready", "agents/b": "Ready"}
    for key_id, (token, _) in first.items():
        grant = await store.grant(key_id)
        assert grant is not None and grant.token_sha256 == token_digest(token)

    second = await apply_manifests(store, BOX, manifests("b"))
    assert await store.grant_ids() == {"agents/b"}  # a's manifest is gone, so is its grant
    assert second["agents/b"][0] != first["agents/b"][0]  # every apply hands out fresh tokens


async def test_an_expired_key_is_reported_expired_from_its_grant(store: RedisStore) -> None:
    tokens = MemoryTokens()
    bot = key(expiresAt=(NOW - timedelta(minutes=1)).isoformat())
    result = await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    report = await read_key_report(store, bot.id, result.outcome, NOW)
    assert report.state == "Expired" and "expiresAt" in report.message
