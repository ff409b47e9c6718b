"""tollgate.reconcile.policies and .tokens against a real redis-server: tokens minted once and kept,
rotation, policy fan-out and deletion, invalid objects failing closed. Secrets are in memory here; the
operator tier runs the same functions over the Kubernetes API."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tests.builders import spend_policy, vault_key

from tollgate.credentials import CredentialBox, fingerprint, new_box_key, token_digest
from tollgate.errors import InvalidSpec
from tollgate.policy.manifests import SecretObject
from tollgate.reconcile.context import ReconcileContext
from tollgate.reconcile.policies import (
    InvalidPolicy,
    apply_spend_policy,
    delete_spend_policy,
    parse_key,
    parse_policy,
    reconcile_key,
    reconcile_keys,
)
from tollgate.reconcile.secrets import ManifestSecretReader
from tollgate.reconcile.tokens import VaultKeyObject
from tollgate.store.redis import RedisStore

NS = "agents"
VENDOR_KEY = "sk_test_vendor_key_one"
BOX = CredentialBox([new_box_key()])


class MemoryTokens:
    """TokenSecrets in a dict: Secret name → (owner uid, token)."""

    def __init__(self) -> None:
        self.secrets: dict[str, tuple[str, str]] = {}
        self.writes = 0

    async def read_token(self, key: VaultKeyObject) -> str | None:
        held = self.secrets.get(f"{key.namespace}/{key.token_secret_name}")
        return held[1] if held and held[0] == key.uid else None

    async def write_token(self, key: VaultKeyObject, token: str) -> None:
        name = f"{key.namespace}/{key.token_secret_name}"
        if name.endswith("/taken"):
            raise InvalidSpec("spec.tokenSecretName", f"Secret {name} is not owned by VaultKey {key.name}")
        self.secrets[name] = (key.uid, token)
        self.writes += 1

    def token(self, key: VaultKeyObject) -> str:
        return self.secrets[f"{key.namespace}/{key.token_secret_name}"][1]


def vendor_secrets(value: str = VENDOR_KEY) -> ManifestSecretReader:
    return ManifestSecretReader({f"{NS}/stripe": SecretObject(NS, "stripe", {"api-key": value})})


def key(name: str = "bot", uid: str = "uid-1", **spec: Any) -> VaultKeyObject:
    return VaultKeyObject(NS, name, uid, vault_key(**spec))


async def test_a_new_key_gets_a_token_in_its_secret_and_only_the_digest_in_redis(store: RedisStore) -> None:
    tokens, bot = MemoryTokens(), key()
    result = await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    assert result.outcome.ready and result.minted
    token = tokens.token(bot)
    assert token.startswith("tgk_")
    assert bot.token_secret_name == "bot-vault-token"
    grant = await store.grant(bot.id)
    assert grant is not None and grant.token_sha256 == token_digest(token)
    assert await store.key_for_token(token_digest(token)) == bot.id


async def test_applying_again_keeps_the_token_already_in_the_secret(store: RedisStore) -> None:
    tokens, bot = MemoryTokens(), key()
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    token = tokens.token(bot)
    await store.revoke(bot.id)  # as a Redis flush would leave it
    again = await reconcile_key(ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy())
    assert not again.minted and tokens.writes == 1 and tokens.token(bot) == token
    grant = await store.grant(bot.id)
    assert grant is not None and grant.token_sha256 == token_digest(token)


async def test_a_token_secret_left_by_an_earlier_key_of_that_name_is_not_reused(store: RedisStore) -> None:
    tokens = MemoryTokens()
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), key(uid="old"), spend_policy(), mint=True
    )
    old = tokens.token(key(uid="old"))
    result = await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), key(uid="new"), spend_policy()
    )
    assert result.minted and tokens.token(key(uid="new")) != old


async def test_minting_again_rotates_the_token_and_the_old_one_no_longer_matches(store: RedisStore) -> None:
    tokens, bot = MemoryTokens(), key()
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    old = tokens.token(bot)
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    new = tokens.token(bot)
    grant = await store.grant(bot.id)
    assert new != old and grant is not None and grant.token_sha256 == token_digest(new)
    assert await store.key_for_token(token_digest(old)) == bot.id  # known, so refused as revoked


async def test_a_missing_policy_stores_no_grant_but_still_writes_the_token_secret(store: RedisStore) -> None:
    tokens, bot = MemoryTokens(), key()
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    result = await reconcile_key(ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, None)
    assert result.outcome.state == "PolicyMissing"
    assert "agents/refunds" in result.outcome.message
    assert await store.grant(bot.id) is None
    assert tokens.writes == 1


async def test_a_missing_vendor_key_secret_revokes_the_key(store: RedisStore) -> None:
    tokens, bot = MemoryTokens(), key()
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    result = await reconcile_key(
        ReconcileContext(store, BOX, ManifestSecretReader({}), tokens), bot, spend_policy()
    )
    assert result.outcome.state == "SecretMissing"
    assert await store.grant(bot.id) is None


async def test_a_changed_vendor_key_is_sealed_into_the_grant(store: RedisStore) -> None:
    tokens, bot = MemoryTokens(), key()
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    before = await store.grant(bot.id)
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets("sk_test_vendor_key_two"), tokens), bot, spend_policy()
    )
    after = await store.grant(bot.id)
    assert before is not None and after is not None
    assert after.credential_fingerprint == fingerprint("sk_test_vendor_key_two")
    assert BOX.open(after.credential) == "sk_test_vendor_key_two"
    assert after.version != before.version  # so ext_authz's cached copy is dropped on the next call
    assert after.token_sha256 == before.token_sha256


async def test_a_policy_change_recompiles_every_key_bound_to_it(store: RedisStore) -> None:
    tokens, keys = MemoryTokens(), [key("a", "uid-a"), key("b", "uid-b")]
    for k in keys:
        await reconcile_key(
            ReconcileContext(store, BOX, vendor_secrets(), tokens), k, spend_policy(), mint=True
        )
    results = await apply_spend_policy(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), spend_policy(dailyCapUsd="7.5"), keys
    )
    assert [(r.key_id, r.outcome.state, r.minted) for r in results] == [
        ("agents/a", "Ready", False),
        ("agents/b", "Ready", False),
    ]
    for k in keys:
        grant = await store.grant(k.id)
        assert grant is not None and grant.daily_cap_micro_usd == 7_500_000


async def test_an_invalid_policy_revokes_its_keys_with_a_message_naming_the_field(store: RedisStore) -> None:
    tokens, bot = MemoryTokens(), key()
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    policy = parse_policy({"vendor": "stripe", "dailyCapUsd": "-3", "allow": ["POST /v1/refunds"]})
    assert isinstance(policy, InvalidPolicy)
    assert policy.problems[0].startswith("spec.dailyCapUsd: ")
    assert str(policy.error()).startswith("spec.dailyCapUsd: ")
    [result] = await apply_spend_policy(ReconcileContext(store, BOX, vendor_secrets(), tokens), policy, [bot])
    assert result.outcome.state == "PolicyMissing" and "spec.dailyCapUsd" in result.outcome.message
    assert await store.grant(bot.id) is None


async def test_deleting_a_policy_revokes_every_key_bound_to_it(store: RedisStore) -> None:
    tokens, keys = MemoryTokens(), [key("a", "uid-a"), key("b", "uid-b")]
    for k in keys:
        await reconcile_key(
            ReconcileContext(store, BOX, vendor_secrets(), tokens), k, spend_policy(), mint=True
        )
    results = await delete_spend_policy(store, "agents/refunds", [k.id for k in keys])
    assert {r.outcome.state for r in results} == {"PolicyMissing"}
    assert await store.grant_ids() == set()


async def test_a_token_secret_that_cannot_be_written_revokes_the_key_and_names_the_field(
    store: RedisStore,
) -> None:
    tokens = MemoryTokens()
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), key(), spend_policy(), mint=True
    )
    clash = key(tokenSecretName="taken")
    with pytest.raises(InvalidSpec) as exc:
        await reconcile_key(
            ReconcileContext(store, BOX, vendor_secrets(), tokens), clash, spend_policy(), mint=True
        )
    assert exc.value.field == "spec.tokenSecretName"
    assert await store.grant(clash.id) is None
    # a fan-out passes over it (it holds no token) and the other keys go on
    other = key("other", "uid-o")
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), other, spend_policy(), mint=True
    )
    results = await reconcile_keys(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), [clash, other], lambda _: spend_policy()
    )
    assert [(r.key_id, r.outcome.state) for r in results] == [("agents/other", "Ready")]
    assert await store.grant(clash.id) is None


async def test_a_fan_out_never_mints_a_token_a_new_key_is_still_to_get_from_its_own_handler(
    store: RedisStore,
) -> None:
    tokens, fresh = MemoryTokens(), key("fresh", "uid-f")
    results = await apply_spend_policy(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), spend_policy(), [fresh]
    )
    assert results == [] and tokens.writes == 0
    assert await store.grant(fresh.id) is None
    # the create handler then mints the one token the agent will hold, and a later fan-out keeps it
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), fresh, spend_policy(), mint=True
    )
    token = tokens.token(fresh)
    [again] = await apply_spend_policy(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), spend_policy(), [fresh]
    )
    assert again.outcome.ready and not again.minted and tokens.token(fresh) == token


async def test_an_invalid_key_spec_revokes_its_grant_before_the_error_is_raised(store: RedisStore) -> None:
    tokens, bot = MemoryTokens(), key()
    await reconcile_key(
        ReconcileContext(store, BOX, vendor_secrets(), tokens), bot, spend_policy(), mint=True
    )
    bad = {"policyRef": {"name": "refunds"}, "vendorKeySecretRef": {"name": "stripe", "key": "bad key!"}}
    with pytest.raises(ValidationError):
        await parse_key(store, NS, "bot", "uid-1", bad)
    assert await store.grant(bot.id) is None


async def test_a_key_whose_deletion_was_handled_is_not_brought_back_by_a_fan_out(store: RedisStore) -> None:
    tokens, keys = MemoryTokens(), [key("gone", "uid-gone"), key("kept", "uid-kept")]
    for k in keys:
        await reconcile_key(
            ReconcileContext(store, BOX, vendor_secrets(), tokens), k, spend_policy(), mint=True
        )
    await store.revoke("agents/gone")  # its delete handler ran
    results = await apply_spend_policy(
        ReconcileContext(store, BOX, vendor_secrets(), tokens),
        spend_policy(),
        keys,
        is_live=lambda k: k.uid != "uid-gone",
    )
    assert [r.key_id for r in results] == ["agents/kept"]
    assert await store.grant_ids() == {"agents/kept"}
