"""The operator end to end: objects in the (emulated) API server → the real `kopf run` process → Redis →
ext_authz + Envoy → the stripe SDK against localstripe. Each change is timed from the moment the API
call that made it returned to the first call through the gateway that shows it."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import stripe
from tests.builders import grant
from tests.operator.cluster import Cluster, Operator, agent, eventually, wait_for_state, wait_for_token
from tests.operator.conftest import REAL_KEY, TIMINGS

from tollgate.credentials import fingerprint
from tollgate.local.gateway import LocalGateway
from tollgate.store import keys
from tollgate.store.redis import RedisStore

REFUNDS = ["POST /v1/refunds", "GET /v1/charges/*", "GET /v1/charges"]
REVOKE_TARGET_S = 1.0


@dataclass
class Agent:
    namespace: str
    token: str
    stripe: stripe.StripeClient


Deploy = Callable[..., Agent]


@pytest.fixture
def deploy(cluster: Cluster, gateway: LocalGateway, namespace: str) -> Deploy:
    """Create a vendor-key Secret, a SpendPolicy and a VaultKey; return the agent once its key works."""

    def _deploy(policy: dict[str, Any] | None = None, key: dict[str, Any] | None = None) -> Agent:
        cluster.create("Secret", namespace, "stripe-key", type="Opaque", data={"api-key": b64(REAL_KEY)})
        cluster.create(
            "SpendPolicy",
            namespace,
            "refunds",
            spec={"vendor": "stripe", "dailyCapUsd": "50", "allow": REFUNDS, **(policy or {})},
        )
        cluster.create(
            "VaultKey",
            namespace,
            "bot",
            spec={
                "policyRef": {"name": "refunds"},
                "vendorKeySecretRef": {"name": "stripe-key", "key": "api-key"},
                **(key or {}),
            },
        )
        token = wait_for_token(cluster, namespace, "bot-vault-token")
        wait_for_state(cluster, "VaultKey", namespace, "bot", "Ready")
        return Agent(namespace, token, agent(gateway, token))

    return _deploy


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def works(client: stripe.StripeClient) -> bool:
    client.v1.charges.list(params={"limit": 1})
    return True


# Between calls: fine enough for the figures, and leaves CPU to the operator on a small machine.
POLL_S = 0.005


def first_refusal(
    client: stripe.StripeClient, since: float, *, timeout: float = 30.0
) -> tuple[float, stripe.AuthenticationError]:
    """Call through the gateway until a call is refused; the seconds since `since`, and the error."""
    while True:
        try:
            client.v1.charges.list(params={"limit": 1})
        except stripe.AuthenticationError as exc:
            return time.perf_counter() - since, exc
        if time.perf_counter() - since > timeout:
            raise AssertionError(f"calls still pass {timeout:g}s after the change")
        time.sleep(POLL_S)


def first_success(client: stripe.StripeClient, since: float, *, timeout: float = 60.0) -> float:
    """Call through the gateway until a call passes; the seconds since `since`."""
    while True:
        try:
            client.v1.charges.list(params={"limit": 1})
            return time.perf_counter() - since
        except stripe.AuthenticationError:
            if time.perf_counter() - since > timeout:
                raise
        time.sleep(POLL_S)


def code(exc: stripe.StripeError) -> str | None:
    """The `error.code` of the vendor's error body (Tollgate's rule name when Tollgate refused)."""
    assert exc.error is not None, exc
    return exc.error.code


def record(what: str, seconds: float) -> None:
    TIMINGS.append((what, seconds))
    print(f"{what}: {seconds * 1000:.0f} ms")


def test_a_created_key_gets_a_token_secret_that_spends_through_the_gateway_and_its_delete_revokes_it(
    cluster: Cluster, deploy: Deploy, direct: stripe.StripeClient
) -> None:
    bot = deploy()
    ns = bot.namespace
    key = cluster.get("VaultKey", ns, "bot")
    secret = cluster.get("Secret", ns, "bot-vault-token")
    assert key and secret
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("VaultKey", "bot", key["metadata"]["uid"])
    assert owner["controller"] is True  # deleting the VaultKey deletes the token Secret with it

    charge = direct.v1.charges.create(params={"amount": 5000, "currency": "usd", "source": "pm_card_visa"})
    refund = bot.stripe.v1.refunds.create(params={"charge": charge.id, "amount": 1500})
    assert refund.amount == 1500

    status = eventually(
        lambda: (s := cluster.status("VaultKey", ns, "bot")).get("spentTodayUsd") == "15.00" and s,
        what="the refund in the key's status",
    )
    assert status["state"] == "Ready"
    assert (status["dailyCapUsd"], status["remainingTodayUsd"]) == ("50.00", "35.00")
    assert status["lastDecision"]["rule"] == "tollgate_allowed"
    assert status["tokenSecretName"] == "bot-vault-token"
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready == {"Ready": "True", "Expired": "False", "Revoked": "False", "Suspended": "False"}
    eventually(
        lambda: {"TokenMinted", "Ready"} <= {e["reason"] for e in cluster.events(ns, "bot")},
        what="Events for the minted token and the Ready key",
    )

    cluster.delete("VaultKey", ns, "bot")
    latency, refusal = first_refusal(bot.stripe, time.perf_counter())
    record(f"VaultKey DELETE → first refused call (target ≤ {REVOKE_TARGET_S:g} s)", latency)
    assert code(refusal) == "tollgate_key_revoked"
    eventually(lambda: cluster.get("VaultKey", ns, "bot") is None, what="the finalizer released")


def test_suspending_a_key_refuses_its_calls_until_it_is_resumed(cluster: Cluster, deploy: Deploy) -> None:
    bot = deploy()
    assert works(bot.stripe)

    cluster.patch("VaultKey", bot.namespace, "bot", {"spec": {"suspended": True}})
    latency, refusal = first_refusal(bot.stripe, time.perf_counter())
    record("VaultKey suspended → first refused call", latency)
    assert code(refusal) == "tollgate_key_suspended"
    status = wait_for_state(cluster, "VaultKey", bot.namespace, "bot", "Suspended")
    assert {c["type"]: c["status"] for c in status["conditions"]}["Suspended"] == "True"

    cluster.patch("VaultKey", bot.namespace, "bot", {"spec": {"suspended": False}})
    record("VaultKey resumed → first call passing", first_success(bot.stripe, time.perf_counter()))
    wait_for_state(cluster, "VaultKey", bot.namespace, "bot", "Ready")


def test_rotating_a_key_writes_a_new_token_and_refuses_the_old_one_at_once(
    cluster: Cluster, deploy: Deploy, gateway: LocalGateway
) -> None:
    bot = deploy(key={"tokenRotation": "1"})

    cluster.patch("VaultKey", bot.namespace, "bot", {"spec": {"tokenRotation": "2"}})
    since = time.perf_counter()
    latency, refusal = first_refusal(bot.stripe, since)
    record("VaultKey tokenRotation changed → old token refused", latency)
    assert code(refusal) == "tollgate_key_revoked"
    new = wait_for_token(cluster, bot.namespace, "bot-vault-token", other_than=bot.token)
    assert works(agent(gateway, new))
    eventually(
        lambda: cluster.status("VaultKey", bot.namespace, "bot").get("tokenRotation") == "2",
        what="the rotation recorded in status",
    )
    eventually(
        lambda: "TokenRotated" in {e["reason"] for e in cluster.events(bot.namespace, "bot")},
        what="a TokenRotated Event",
    )


def test_deleting_a_policy_refuses_every_key_bound_to_it_until_it_is_back(
    cluster: Cluster, deploy: Deploy
) -> None:
    bot = deploy()
    eventually(
        lambda: cluster.status("SpendPolicy", bot.namespace, "refunds").get("boundKeys") == 1,
        what="the bound key counted in the policy's status",
    )
    policy = cluster.get("SpendPolicy", bot.namespace, "refunds")
    assert policy

    cluster.delete("SpendPolicy", bot.namespace, "refunds")
    latency, refusal = first_refusal(bot.stripe, time.perf_counter())
    record("SpendPolicy DELETE → first refused call", latency)
    assert code(refusal) == "tollgate_key_revoked"
    status = wait_for_state(cluster, "VaultKey", bot.namespace, "bot", "PolicyMissing")
    assert "refunds" in status["message"]

    # the same token works again as soon as the policy is back
    cluster.create("SpendPolicy", bot.namespace, "refunds", spec=policy["spec"])
    record("SpendPolicy re-created → first call passing", first_success(bot.stripe, time.perf_counter()))
    wait_for_state(cluster, "VaultKey", bot.namespace, "bot", "Ready")


def test_a_policy_change_reaches_its_keys_on_their_next_call(
    cluster: Cluster, deploy: Deploy, direct: stripe.StripeClient
) -> None:
    bot = deploy()
    charge = direct.v1.charges.create(params={"amount": 5000, "currency": "usd", "source": "pm_card_visa"})

    cluster.patch("SpendPolicy", bot.namespace, "refunds", {"spec": {"dailyCapUsd": "10"}})
    eventually(
        lambda: cluster.status("VaultKey", bot.namespace, "bot").get("dailyCapUsd") == "10.00",
        what="the new cap in the key's status",
    )
    with pytest.raises(stripe.CardError) as exc:
        bot.stripe.v1.refunds.create(params={"charge": charge.id, "amount": 1500})
    assert code(exc.value) == "tollgate_cap_exceeded"


def test_a_changed_vendor_key_secret_is_what_the_next_call_carries(
    cluster: Cluster, deploy: Deploy, redis_client: redis.Redis
) -> None:
    bot = deploy()
    assert works(bot.stripe)

    # localstripe refuses any key not starting sk_: a refusal that is not Tollgate's proves the swap
    cluster.patch("Secret", bot.namespace, "stripe-key", {"data": {"api-key": b64("pk_not_a_secret_key")}})
    latency, refusal = first_refusal(bot.stripe, time.perf_counter())
    record("vendor-key Secret changed → next call carries the new key", latency)
    assert not (code(refusal) or "").startswith("tollgate_")

    cluster.patch("Secret", bot.namespace, "stripe-key", {"data": {"api-key": b64("sk_test_rotated_key")}})
    first_success(bot.stripe, time.perf_counter())
    grant = json.loads(redis_client.get(keys.grant(f"{bot.namespace}/bot")) or "{}")
    assert grant["credential_fingerprint"] == fingerprint("sk_test_rotated_key")
    assert "sk_test_rotated_key" not in json.dumps(grant)  # stored sealed only


def test_after_an_operator_restart_and_a_redis_flushall_exactly_the_clusters_keys_work_again(
    cluster: Cluster,
    deploy: Deploy,
    operator: Operator,
    redis_client: redis.Redis,
    gateway: LocalGateway,
) -> None:
    bot = deploy()
    assert works(bot.stripe)
    operator.stop()
    redis_client.flushall()
    ghost_token = "tgk_ghost_token_with_no_vault_key"
    asyncio.run(_plant_grant(gateway.redis_url, f"{bot.namespace}/ghost", ghost_token))
    with pytest.raises(stripe.AuthenticationError):
        bot.stripe.v1.charges.list(params={"limit": 1})

    since = time.perf_counter()
    operator.start(entry="module")  # the other entry point: `python -m tollgate_operator`
    record("operator restart after FLUSHALL → first call passing", first_success(bot.stripe, since))
    assert cluster.secret_value(bot.namespace, "bot-vault-token", "token") == bot.token  # same token
    eventually(
        lambda: f"{bot.namespace}/ghost" not in redis_client.smembers(keys.grants_index()),
        what="the grant with no VaultKey behind it revoked",
    )
    first_refusal(agent(gateway, ghost_token), time.perf_counter())
    wait_for_state(cluster, "VaultKey", bot.namespace, "bot", "Ready")


async def _plant_grant(redis_url: str, key_id: str, token: str) -> None:
    store = RedisStore.from_url(redis_url)
    try:
        await store.put_grant(grant(token=token).model_copy(update={"key_id": key_id}))
    finally:
        await store.close()


def test_an_invalid_object_gets_a_condition_and_an_event_naming_the_field_and_nothing_else_breaks(
    cluster: Cluster, deploy: Deploy, gateway: LocalGateway
) -> None:
    bot = deploy()
    ns = bot.namespace
    cluster.create(
        "VaultKey",
        ns,
        "broken",
        spec={
            "policyRef": {"name": "refunds"},
            "vendorKeySecretRef": {"name": "stripe-key", "key": "bad key!"},
        },
    )
    status = wait_for_state(cluster, "VaultKey", ns, "broken", "Invalid")
    assert status["message"].startswith("spec.vendorKeySecretRef.key: ")
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "Invalid")
    assert "spec.vendorKeySecretRef.key" in ready["message"]
    eventually(
        lambda: any(
            e["type"] == "Warning"
            and e["reason"] == "Invalid"
            and "spec.vendorKeySecretRef.key" in e["message"]
            for e in cluster.events(ns, "broken")
        ),
        what="a Warning Event naming the field",
    )
    assert works(bot.stripe)  # the valid key beside it is untouched

    cluster.create(
        "SpendPolicy", ns, "bad-policy", spec={"vendor": "stripe", "dailyCapUsd": "-1", "allow": REFUNDS}
    )
    policy = wait_for_state(cluster, "SpendPolicy", ns, "bad-policy", "Invalid")
    assert policy["message"].startswith("spec.dailyCapUsd: ")
    assert {c["type"]: c["status"] for c in policy["conditions"]}["Ready"] == "False"
    eventually(
        lambda: any(
            e["type"] == "Warning" and e["reason"] == "Invalid" and "spec.dailyCapUsd" in e["message"]
            for e in cluster.events(ns, "bad-policy")
        ),
        what="a Warning Event naming the policy's field",
    )

    # a valid key made invalid stops working: it must not go on under its old spec
    cluster.patch("VaultKey", ns, "bot", {"spec": {"expiresAt": "next tuesday"}})
    latency, refusal = first_refusal(bot.stripe, time.perf_counter())
    record("VaultKey made invalid → first refused call", latency)
    assert code(refusal) == "tollgate_key_revoked"
    assert wait_for_state(cluster, "VaultKey", ns, "bot", "Invalid")["message"].startswith("spec.expiresAt: ")

    # fixed, it works again with the token its agent already holds; the broken key, fixed, gets one
    cluster.patch("VaultKey", ns, "bot", {"spec": {"expiresAt": None}})
    record("invalid VaultKey fixed → first call passing", first_success(bot.stripe, time.perf_counter()))
    assert cluster.secret_value(ns, "bot-vault-token", "token") == bot.token
    cluster.patch("VaultKey", ns, "broken", {"spec": {"vendorKeySecretRef": {"key": "api-key"}}})
    wait_for_state(cluster, "VaultKey", ns, "broken", "Ready")
    assert works(agent(gateway, wait_for_token(cluster, ns, "broken-vault-token")))
