"""SpendBudgets through the real `kopf run` process: two policies name one budget; their keys spend under
it through the gateway; the budget's status shows spent and remaining (what `kubectl get spendbudgets`
prints); the budget stops both keys at its cap; a budget deleted refuses its keys, and back, they work."""

from __future__ import annotations

import stripe
from tests.operator.cluster import Cluster, agent, eventually, wait_for_state, wait_for_token
from tests.operator.conftest import REAL_KEY
from tests.operator.test_lifecycle import b64, code

from tollgate.local.gateway import LocalGateway

REFUNDS = ["POST /v1/refunds", "GET /v1/charges/*", "GET /v1/charges"]


def test_keys_of_two_policies_share_a_budget_whose_status_shows_spent_and_remaining(
    cluster: Cluster, gateway: LocalGateway, namespace: str, direct: stripe.StripeClient
) -> None:
    ns = namespace
    cluster.create("Secret", ns, "stripe-key", type="Opaque", data={"api-key": b64(REAL_KEY)})
    cluster.create("SpendBudget", ns, "team", spec={"dailyCapUsd": "20"})
    for policy in ("refunds-a", "refunds-b"):
        spec = {"vendor": "stripe", "dailyCapUsd": "50", "allow": REFUNDS, "budgetRef": {"name": "team"}}
        cluster.create("SpendPolicy", ns, policy, spec=spec)
    clients = {}
    for key, policy in (("bot-a", "refunds-a"), ("bot-b", "refunds-b")):
        spec = {"policyRef": {"name": policy}, "vendorKeySecretRef": {"name": "stripe-key", "key": "api-key"}}
        cluster.create("VaultKey", ns, key, spec=spec)
        token = wait_for_token(cluster, ns, f"{key}-vault-token")
        wait_for_state(cluster, "VaultKey", ns, key, "Ready")
        clients[key] = agent(gateway, token)
    charge = direct.v1.charges.create(params={"amount": 10_000, "currency": "usd", "source": "pm_card_visa"})

    clients["bot-a"].v1.refunds.create(params={"charge": charge.id, "amount": 1200})
    clients["bot-b"].v1.refunds.create(params={"charge": charge.id, "amount": 500})
    status = eventually(
        lambda: (s := cluster.status("SpendBudget", ns, "team")).get("spentTodayUsd") == "17.00" and s,
        what="both keys' refunds in the budget's status",
    )
    assert (status["state"], status["dailyCapUsd"], status["remainingTodayUsd"]) == ("Ready", "20.00", "3.00")
    assert status["boundPolicies"] == 2

    # $4 fits bot-b's own $50 cap, not the $3 left of the team's budget.
    try:
        clients["bot-b"].v1.refunds.create(params={"charge": charge.id, "amount": 400})
        raise AssertionError("a refund over the shared budget passed")
    except stripe.CardError as exc:
        assert code(exc) == "tollgate_budget_exceeded"

    cluster.delete("SpendBudget", ns, "team")
    wait_for_state(cluster, "VaultKey", ns, "bot-a", "BudgetMissing")
    try:
        clients["bot-a"].v1.charges.list(params={"limit": 1})
        raise AssertionError("a key whose budget is gone still works")
    except stripe.AuthenticationError as exc:
        assert code(exc) == "tollgate_key_revoked"

    cluster.create("SpendBudget", ns, "team", spec={"dailyCapUsd": "25"})
    wait_for_state(cluster, "VaultKey", ns, "bot-a", "Ready")
    clients["bot-a"].v1.refunds.create(params={"charge": charge.id, "amount": 800})  # $25 of $25
    status = eventually(
        lambda: (s := cluster.status("SpendBudget", ns, "team")).get("spentTodayUsd") == "25.00" and s,
        what="the budget's spend kept across its re-creation, at its new cap",
    )
    assert (status["state"], status["remainingTodayUsd"]) == ("Exhausted", "0.00")
