"""An approval under a shared budget, through the real gateway with the official stripe SDK: a key whose
policy asks for approval above $100 and names a SpendBudget. The approved retry passes once and is counted
against both the key's cap and the budget; a second approved call that would pass the budget (though it
fits the key's cap) is refused with tollgate_budget_exceeded, and nothing of it reaches Stripe."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe
from tests.e2e.conftest import NAMESPACE, REAL_KEY
from tests.e2e.test_approvals import cli, opts, pending_id
from tests.e2e.test_audit_trail import eventually, rows
from tests.e2e.test_metrics import scrape
from tests.e2e.test_stripe_sdk import REFUNDS, charge, refunded
from tests.support.recorder import RecordingUpstream

from tollgate.local.gateway import LocalGateway
from tollgate.policy.manifests import BudgetObject, KeyObject, Manifests, PolicyObject, SecretObject
from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.store.redis import RedisStore

KEY = f"{NAMESPACE}/approver-bot"
# A name no other test uses: the audit deduplicates its budget alerts per budget and day.
BUDGET = f"{NAMESPACE}/approvals-budget"
BIG = 25_000  # a $250 refund: above the $100 threshold, within the key's $600 cap, and 2 of them pass $300


def deploy_under_budget(gateway: LocalGateway) -> stripe.StripeClient:
    m = Manifests()
    name = BUDGET.partition("/")[2]
    m.budgets[BUDGET] = BudgetObject(NAMESPACE, name, SpendBudgetSpec.model_validate({"dailyCapUsd": "300"}))
    policy = {
        "vendor": "stripe",
        "dailyCapUsd": "600",
        "allow": REFUNDS,
        "approval": {"aboveUsd": "100", "ttl": "30m"},
        "budgetRef": {"name": name},
    }
    m.policies[f"{NAMESPACE}/approver-policy"] = PolicyObject(
        NAMESPACE, "approver-policy", SpendPolicySpec.model_validate(policy)
    )
    key = {
        "policyRef": {"name": "approver-policy"},
        "vendorKeySecretRef": {"name": "stripe-key", "key": "api-key"},
    }
    m.keys[KEY] = KeyObject(NAMESPACE, "approver-bot", VaultKeySpec.model_validate(key))
    m.secrets[f"{NAMESPACE}/stripe-key"] = SecretObject(NAMESPACE, "stripe-key", {"api-key": REAL_KEY})
    token = gateway.apply(m)[KEY]
    return stripe.StripeClient(
        token, base_addresses={"api": gateway.base_url("stripe")}, max_network_retries=0
    )


def counters(gateway: LocalGateway) -> tuple[int, int]:
    """What Redis has counted today: the key's spend (in the budget's slot) and the budget's."""

    async def read() -> tuple[int, int]:
        store = RedisStore.from_url(gateway.redis_url)
        try:
            g = await store.grant(KEY)
            assert g is not None and g.budget is not None and g.budget_id == BUDGET
            now = datetime.now(UTC)
            key = await store.spent(KEY, "stripe", g.day_key(now), g.budget_id)
            return key, await store.budget_spent(BUDGET, g.budget.day_key(now))
        finally:
            await store.close()

    return asyncio.run(read())


def test_an_approved_call_counts_against_key_and_budget_and_the_next_one_past_the_budget_is_refused(
    direct: stripe.StripeClient, gateway: LocalGateway, alert_sink: RecordingUpstream
) -> None:
    run = "run-approval-budget"
    agent = deploy_under_budget(gateway)
    before = scrape(gateway)
    ch = charge(direct, 100_000)
    first: Any = {"charge": ch.id, "amount": BIG}

    aid = pending_id(agent, first, opts("ik-ab-1", run))
    assert counters(gateway) == (0, 0)  # a pending approval reserves nothing
    assert cli(gateway, "approve", aid, "--by", "alice").exit_code == 0
    agent.v1.refunds.create(params=first, options=opts("ik-ab-1", run))
    assert refunded(direct, ch.id) == BIG
    assert counters(gateway) == (250_000_000, 250_000_000)

    # The second $250 fits the key's $600 cap but not the $300 budget: approving it does not make it fit.
    second: Any = {"charge": ch.id, "amount": BIG}
    aid2 = pending_id(agent, second, opts("ik-ab-2", run))
    assert aid2 != aid
    assert cli(gateway, "approve", aid2, "--by", "alice").exit_code == 0
    with pytest.raises(stripe.CardError) as exc:
        agent.v1.refunds.create(params=second, options=opts("ik-ab-2", run))
    assert exc.value.http_status == 402 and exc.value.code == "tollgate_budget_exceeded"
    assert f"SpendBudget {BUDGET}" in (exc.value.user_message or "")
    assert refunded(direct, ch.id) == BIG  # nothing of the refused call reached Stripe
    assert len(direct.v1.refunds.list(params={"charge": ch.id}).data) == 1
    assert counters(gateway) == (250_000_000, 250_000_000)

    after = scrape(gateway)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted({"budget": BUDGET, **labels}.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    # The budget's metrics: what was reserved under it, and its share spent after each money call under
    # it ($250 of $300 after the approved call, and still at the refusal): past 0.8, within 0.9.
    assert delta("tollgate_budget_reserved_micro_usd_total") == 250_000_000
    assert delta("tollgate_budget_spent_ratio_count") == 2
    assert delta("tollgate_budget_spent_ratio_bucket", le="0.8") == 0
    assert delta("tollgate_budget_spent_ratio_bucket", le="0.9") == 2

    got = eventually(lambda: len(r := rows(gateway, "agent_run_id = :run", {"run": run})) == 4 and r)
    assert [(r["idempotency_key"], r["decision"], r["rule"], r["budget_id"]) for r in got] == [
        ("ik-ab-1", "deny", "tollgate_approval_required", BUDGET),
        ("ik-ab-1", "allow", "tollgate_allowed", BUDGET),
        ("ik-ab-2", "deny", "tollgate_approval_required", BUDGET),
        ("ik-ab-2", "deny", "tollgate_budget_exceeded", BUDGET),
    ]
    assert [r["approval_id"] for r in got] == [aid, aid, aid2, aid2]

    # The alerts: each approval asked for, and the budget past 80 % (awaited here, so that none lands in
    # a later test's sink).
    def alerted() -> list[str]:
        return [str(r.json()["text"]) for r in alert_sink.requests]

    eventually(lambda: all(any(aid_ in t for t in alerted()) for aid_ in (aid, aid2)))
    over = eventually(lambda: [t for t in alerted() if f"SpendBudget {BUDGET}" in t])
    assert any("has spent $250.00 of its $300.00 daily cap (80%+)" in t for t in over), over
