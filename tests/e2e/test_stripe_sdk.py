"""The official stripe SDK → Envoy → ext_authz → Redis → localstripe, for real."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest
import stripe
from tests.e2e.conftest import Deploy

from tollgate.local.gateway import LocalGateway

REFUNDS = ["POST /v1/refunds", "GET /v1/charges/*", "GET /v1/charges"]


def charge(direct: stripe.StripeClient, amount: int, customer: str | None = None) -> Any:
    params: dict[str, Any] = {"amount": amount, "currency": "usd", "source": "pm_card_visa"}
    if customer:
        params["customer"] = customer
    return direct.v1.charges.create(params=params)  # type: ignore[arg-type]


def refunded(direct: stripe.StripeClient, charge_id: str) -> int:
    return direct.v1.charges.retrieve(charge_id).amount_refunded


def test_an_in_policy_refund_passes_and_money_moves(direct: stripe.StripeClient, deploy: Deploy) -> None:
    # localstripe refuses any key that is not sk_…: the refund only succeeds if the real key was swapped in.
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS})
    ch = charge(direct, 5000)
    refund = agent.v1.refunds.create(params={"charge": ch.id, "amount": 1500})
    assert refund.amount == 1500 and refund.charge == ch.id
    assert refunded(direct, ch.id) == 1500


def test_a_full_refund_is_priced_from_the_charge_and_counted(
    direct: stripe.StripeClient, deploy: Deploy
) -> None:
    agent = deploy({"dailyCapUsd": "60", "allow": REFUNDS})
    first, second = charge(direct, 4000), charge(direct, 4000)
    agent.v1.refunds.create(params={"charge": first.id})  # $40 of $60
    with pytest.raises(stripe.CardError) as exc:
        agent.v1.refunds.create(params={"charge": second.id})  # another $40 would cross the cap
    assert exc.value.error.code == "tollgate_cap_exceeded"
    assert refunded(direct, second.id) == 0


def test_the_refund_that_would_cross_the_cap_is_a_card_error_and_nothing_moves(
    direct: stripe.StripeClient, deploy: Deploy
) -> None:
    agent = deploy({"dailyCapUsd": "20", "allow": REFUNDS})
    ch = charge(direct, 5000)
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 1500})
    with pytest.raises(stripe.CardError) as exc:
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 600})
    err = exc.value
    assert err.http_status == 402
    assert err.error.code == "tollgate_cap_exceeded"
    assert "$15.00 of $20.00" in err.user_message and "not a card decline" in err.user_message
    assert err.headers["stripe-should-retry"] == "false"
    assert err.headers["x-tollgate-rule"] == "tollgate_cap_exceeded"
    assert refunded(direct, ch.id) == 1500
    # what still fits passes
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 500})
    assert refunded(direct, ch.id) == 2000


def test_a_path_outside_the_allowlist_is_a_permission_error(
    direct: stripe.StripeClient, deploy: Deploy
) -> None:
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS})
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.customers.create(params={"email": "x@example.com"})
    assert exc.value.error.code == "tollgate_endpoint_not_allowed"
    assert "POST /v1/customers" in exc.value.user_message
    assert direct.v1.customers.list().data == []


def test_a_customer_outside_the_scope_is_refused_directly_and_through_a_charge(
    direct: stripe.StripeClient, deploy: Deploy
) -> None:
    mine = direct.v1.customers.create(params={"email": "mine@example.com"})
    theirs = direct.v1.customers.create(params={"email": "theirs@example.com"})
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS, "customers": [mine.id]})
    ch_mine, ch_theirs = charge(direct, 1000, mine.id), charge(direct, 1000, theirs.id)

    agent.v1.refunds.create(params={"charge": ch_mine.id, "amount": 100})
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.refunds.create(params={"charge": ch_theirs.id, "amount": 100})  # the customer is behind ch_…
    assert exc.value.error.code == "tollgate_customer_out_of_scope"
    assert theirs.id in exc.value.user_message
    with pytest.raises(stripe.PermissionError):
        agent.v1.charges.retrieve(ch_theirs.id)
    with pytest.raises(stripe.PermissionError):
        agent.v1.charges.list()  # a list not filtered by an in-scope customer
    assert [c.id for c in agent.v1.charges.list(params={"customer": mine.id}).data] == [ch_mine.id]
    assert refunded(direct, ch_theirs.id) == 0


def test_a_broken_parameter_rule_is_a_permission_error(direct: stripe.StripeClient, deploy: Deploy) -> None:
    agent = deploy(
        {
            "dailyCapUsd": "50",
            "allow": REFUNDS,
            "params": [
                {"field": "amount", "op": "lte", "value": 1000, "endpoints": ["POST /v1/refunds"]},
                {"field": "metadata[ticket]", "op": "present", "endpoints": ["POST /v1/refunds"]},
            ],
        }
    )
    ch = charge(direct, 5000)
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 1001, "metadata": {"ticket": "T-1"}})
    assert exc.value.error.code == "tollgate_param_rule_broken"
    assert "amount must be ≤ 1000" in exc.value.user_message
    with pytest.raises(stripe.PermissionError, match="metadata\\[ticket\\]"):
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 500})
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 500, "metadata": {"ticket": "T-1"}})
    assert refunded(direct, ch.id) == 500


def test_a_foreign_stripe_account_is_a_permission_error(direct: stripe.StripeClient, deploy: Deploy) -> None:
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS, "connectedAccounts": ["acct_ours"]})
    ch = charge(direct, 5000)
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.refunds.create(
            params={"charge": ch.id, "amount": 100}, options={"stripe_account": "acct_other"}
        )
    assert exc.value.error.code == "tollgate_account_not_allowed"
    assert refunded(direct, ch.id) == 0


def test_an_expired_key_is_an_authentication_error(direct: stripe.StripeClient, deploy: Deploy) -> None:
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS}, {"expiresAt": "2026-01-01T00:00:00Z"})
    ch = charge(direct, 5000)
    with pytest.raises(stripe.AuthenticationError) as exc:
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 100})
    assert exc.value.error.code == "tollgate_key_expired"
    assert refunded(direct, ch.id) == 0


def test_a_key_revoked_mid_run_fails_on_the_very_next_call(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    import asyncio

    from tollgate.store.redis import RedisStore

    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS})
    ch = charge(direct, 5000)
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 100})

    async def revoke() -> None:
        store = RedisStore.from_url(gateway.redis_url)
        await store.revoke("agents/bot")
        await store.close()

    asyncio.run(revoke())
    with pytest.raises(stripe.AuthenticationError) as exc:
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 100})
    assert exc.value.error.code == "tollgate_key_revoked"
    assert refunded(direct, ch.id) == 100


def test_an_unknown_key_is_an_authentication_error(
    direct: stripe.StripeClient, gateway: LocalGateway
) -> None:
    stranger = stripe.StripeClient("tgk_made_up", base_addresses={"api": gateway.base_url("stripe")})
    with pytest.raises(stripe.AuthenticationError) as exc:
        stranger.v1.balance.retrieve()
    assert exc.value.error.code == "tollgate_key_unknown"


def test_two_hundred_concurrent_refunds_never_exceed_the_cap(
    direct: stripe.StripeClient, deploy: Deploy
) -> None:
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS}, max_network_retries=0)
    ch = charge(direct, 50_000)

    def refund_one_dollar(_: int) -> str:
        try:
            agent.v1.refunds.create(params={"charge": ch.id, "amount": 100})
            return "ok"
        except stripe.CardError as e:
            return str(e.error.code)

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(refund_one_dollar, range(200)))
    assert outcomes.count("ok") == 50
    assert outcomes.count("tollgate_cap_exceeded") == 150
    assert refunded(direct, ch.id) == 5000  # exactly the $50 cap, never more


def test_payment_intents_count_when_confirmed_and_not_when_only_created(
    direct: stripe.StripeClient, deploy: Deploy
) -> None:
    agent = deploy(
        {"dailyCapUsd": "30", "allow": ["POST /v1/payment_intents", "POST /v1/payment_intents/*/confirm"]}
    )
    # created without confirm: no money moves, nothing is counted
    draft = agent.v1.payment_intents.create(
        params={"amount": 2500, "currency": "usd", "payment_method": "pm_card_visa"}
    )
    # confirming it moves $25: priced by reading the intent from Stripe
    agent.v1.payment_intents.confirm(draft.id)
    # a second $25 intent created with confirm=true would cross the $30 cap
    with pytest.raises(stripe.CardError) as exc:
        agent.v1.payment_intents.create(
            params={"amount": 2500, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
        )
    assert exc.value.error.code == "tollgate_cap_exceeded"
    assert "$25.00 of $30.00" in exc.value.user_message
    assert [pi.status for pi in direct.v1.payment_intents.list().data] == ["succeeded"]
