"""A shared budget (SpendBudget) through the real gateway: a Stripe, a Twilio and a Resend key under one
budget, driven by the official SDKs at once. Every call is reserved against its key's cap and the budget's
in one script, so 200 concurrent calls across the three vendors never pass the budget by a micro-dollar;
the audit names the budget, and after Redis loses its data the budget's spend comes back from the audit
before any money call under it passes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import resend
import stripe
from resend.exceptions import ResendError
from tests.e2e.test_audit_trail import eventually
from tests.support.recorder import RecordedRequest, RecordingUpstream, Reply
from tests.support.world import empty_world
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tollgate.audit.sql import AuditStore
from tollgate.local.gateway import LocalGateway
from tollgate.policy.manifests import BudgetObject, KeyObject, Manifests, PolicyObject, SecretObject
from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.store.redis import RedisStore

NS = "support"
# Each test its own budget: the audit's alerts are deduplicated per budget and day across tests.
_NAMES = itertools.count(1)
SID = "AC" + "2e" * 16
STRIPE_KEY = "sk_test_tollgate_budget_key"
DIME = 100_000  # every call here costs $0.10: a 10-cent refund, one SMS segment, one email


def vendors(req: RecordedRequest) -> Reply:
    """Twilio's and Resend's answers, as each vendor gives them."""
    if req.path.endswith("/Messages.json"):
        return Reply(
            201, {"sid": "SM" + "0" * 32, "account_sid": SID, "status": "queued", "num_segments": "1"}
        )
    return Reply(200, {"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"})


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    with RecordingUpstream(vendors) as up:
        yield up


@pytest.fixture(scope="module")
def slack() -> Iterator[RecordingUpstream]:
    with RecordingUpstream(Reply(200, {"ok": True})) as sink:
        yield sink


@pytest.fixture(scope="module")
def gateway_options(upstream: RecordingUpstream, slack: RecordingUpstream) -> dict[str, Any]:
    # 200 Checks queue on one ext_authz process: Envoy waits longer than in production (see conftest.py).
    return {
        "localstripe": True,
        "upstreams": {"twilio": upstream.url, "resend": upstream.url},
        "extauthz_timeout_ms": 5000,
        "alerts_webhook_url": slack.url,
    }


def manifests(budget: str, budget_usd: str, cap_usd: str = "10") -> Manifests:
    m = Manifests()
    m.budgets[f"{NS}/{budget}"] = BudgetObject(
        NS, budget, SpendBudgetSpec.model_validate({"dailyCapUsd": budget_usd})
    )
    policies: dict[str, dict[str, Any]] = {
        "stripe": {"allow": ["POST /v1/refunds", "GET /v1/charges/*"]},
        "twilio": {
            "allow": ["POST /2010-04-01/Accounts/*/Messages.json"],
            "connectedAccounts": [SID],
            "prices": [{"prefix": "+1", "smsSegmentUsd": "0.10"}],
        },
        "resend": {"allow": ["POST /emails"], "pricePerEmailUsd": "0.10"},
    }
    secrets = {"stripe": STRIPE_KEY, "twilio": f"{SID}:real_twilio_auth_token", "resend": "re_real_key"}
    for vendor, extra in policies.items():
        spec = {"vendor": vendor, "dailyCapUsd": cap_usd, "budgetRef": {"name": budget}, **extra}
        m.policies[f"{NS}/{vendor}"] = PolicyObject(NS, vendor, SpendPolicySpec.model_validate(spec))
        key = {"policyRef": {"name": vendor}, "vendorKeySecretRef": {"name": vendor, "key": "api-key"}}
        m.keys[f"{NS}/{vendor}-agent"] = KeyObject(NS, f"{vendor}-agent", VaultKeySpec.model_validate(key))
        m.secrets[f"{NS}/{vendor}"] = SecretObject(NS, vendor, {"api-key": secrets[vendor]})
    return m


class Agents:
    """The three agents, each holding only its vault token, with the official SDK of its vendor."""

    def __init__(self, gateway: LocalGateway, tokens: dict[str, str]) -> None:
        self.stripe = stripe.StripeClient(
            tokens[f"{NS}/stripe-agent"],
            base_addresses={"api": gateway.base_url("stripe")},
            max_network_retries=0,
        )
        self.twilio = Client(SID, tokens[f"{NS}/twilio-agent"])
        self.twilio.api.base_url = gateway.base_url("twilio")
        resend.api_url = gateway.base_url("resend")
        resend.api_key = tokens[f"{NS}/resend-agent"]
        self.charge = stripe.StripeClient(
            STRIPE_KEY, base_addresses={"api": gateway.upstreams["stripe"]}
        ).v1.charges.create(params={"amount": 100_000, "currency": "usd", "source": "pm_card_visa"})

    def refund(self) -> str:
        try:
            self.stripe.v1.refunds.create(params={"charge": self.charge.id, "amount": 10})
            return "ok"
        except stripe.StripeError as e:
            return str(e.code)

    def text(self) -> str:
        try:
            self.twilio.messages.create(to="+14155550100", from_="+14155550199", body="Your ticket is solved")
            return "ok"
        except TwilioRestException as e:
            return str((e.details or {}).get("tollgate_rule", e.status))

    def email(self) -> str:
        try:
            resend.Emails.send(
                {
                    "from": "help@shop.example.com",
                    "to": "ana@example.com",
                    "subject": "Solved",
                    "text": "Done.",
                }
            )
            return "ok"
        except ResendError as e:
            return str((e.headers or {}).get("x-tollgate-rule", e.code))

    def call(self, i: int) -> tuple[str, str]:
        vendor = ("stripe", "twilio", "resend")[i % 3]
        return vendor, {"stripe": self.refund, "twilio": self.text, "resend": self.email}[vendor]()

    def refunded(self) -> int:
        ch = stripe.StripeClient(
            STRIPE_KEY, base_addresses={"api": self.stripe_upstream}
        ).v1.charges.retrieve(self.charge.id)
        return int(ch.amount_refunded)

    stripe_upstream = ""
    budget_name = budget = ""


@pytest.fixture
def agents(gateway: LocalGateway, upstream: RecordingUpstream) -> Agents:
    empty_world(gateway)
    upstream.clear()
    name = f"support-agents-{next(_NAMES)}"
    a = Agents(gateway, gateway.apply(manifests(name, budget_usd="3")))
    a.stripe_upstream = gateway.upstreams["stripe"]
    a.budget_name, a.budget = name, f"{NS}/{name}"
    return a


def budget_spent(gateway: LocalGateway, budget: str) -> int:
    async def read() -> int:
        store = RedisStore.from_url(gateway.redis_url)
        try:
            g = await store.grant(f"{NS}/stripe-agent")
            assert g is not None and g.budget is not None
            return await store.budget_spent(budget, g.budget.day_key(datetime.now(UTC)))
        finally:
            await store.close()

    return asyncio.run(read())


def test_two_hundred_concurrent_calls_across_stripe_twilio_and_resend_never_pass_the_shared_budget(
    gateway: LocalGateway, agents: Agents, upstream: RecordingUpstream
) -> None:
    # Each key's own cap ($10) is far away: the $3 budget is what stops them, at exactly 30 calls of $0.10.
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(agents.call, range(200)))
    passed = [v for v, o in outcomes if o == "ok"]
    refused = {o for _, o in outcomes if o != "ok"}
    assert len(passed) == 30, outcomes
    assert refused == {"tollgate_budget_exceeded"}, refused
    assert set(passed) == {"stripe", "twilio", "resend"}  # all three shared it
    # What reached the vendors is what passed: 0 overshoot, to the cent.
    assert agents.refunded() == 10 * passed.count("stripe")
    sent = [r for r in upstream.requests if r.method == "POST"]
    assert len(sent) == passed.count("twilio") + passed.count("resend")
    assert budget_spent(gateway, agents.budget) == 30 * DIME


def test_a_budget_refusal_speaks_each_vendors_error_shape_and_names_the_budget(
    gateway: LocalGateway, agents: Agents
) -> None:
    for i in range(30):
        assert agents.call(i)[1] == "ok"
    with pytest.raises(stripe.CardError) as exc:
        agents.stripe.v1.refunds.create(params={"charge": agents.charge.id, "amount": 10})
    assert exc.value.http_status == 402 and exc.value.code == "tollgate_budget_exceeded"
    assert f"SpendBudget {agents.budget}" in (exc.value.user_message or "")
    assert "$3.00 of $3.00" in (exc.value.user_message or "")
    assert agents.text() == "tollgate_budget_exceeded"
    assert agents.email() == "tollgate_budget_exceeded"


def test_the_audit_alerts_at_80_percent_of_the_budget_and_at_its_cap_naming_it(
    gateway: LocalGateway, agents: Agents, slack: RecordingUpstream
) -> None:
    slack.clear()
    for i in range(24):  # $2.40 of $3: the 80 % mark, reached by whichever vendor's call crossed it
        assert agents.call(i)[1] == "ok"
    for i in range(6):
        assert agents.call(i)[1] == "ok"
    assert agents.email() == "tollgate_budget_exceeded"

    def texts() -> list[str]:
        return [str(r.json()["text"]) for r in slack.requests]

    eventually(lambda: any("reached its daily cap" in t for t in texts()))
    budget = [t for t in texts() if f"SpendBudget {agents.budget}" in t]
    assert any("has spent $2.40 of its $3.00 daily cap (80%+)" in t for t in budget), budget
    assert sum("reached its daily cap ($3.00 of $3.00)" in t for t in budget) == 1


def test_audit_rows_name_the_budget_and_its_day(gateway: LocalGateway, agents: Agents) -> None:
    assert agents.refund() == "ok" and agents.text() == "ok"
    gateway.wait_audited()
    audit = AuditStore.from_url(gateway.audit_url)
    try:
        _, rows = audit.query(
            "SELECT vendor, budget_id, budget_day, budget_cap_micro_usd FROM tollgate_calls "
            "WHERE decision = 'allow' ORDER BY vendor"
        )
    finally:
        audit.dispose()
    assert [(v, b, c) for v, b, _, c in rows] == [
        ("stripe", agents.budget, 3_000_000),
        ("twilio", agents.budget, 3_000_000),
    ]
    assert all(day and len(day) == 8 for _, _, day, _ in rows)


def test_after_redis_loses_its_data_the_budgets_spend_comes_back_from_the_audit(
    gateway: LocalGateway, agents: Agents
) -> None:
    for i in range(29):  # $2.90 of the $3 budget, across the three vendors
        assert agents.call(i)[1] == "ok"
    gateway.wait_audited()
    gateway.stop_auditor()
    with redis.Redis.from_url(gateway.redis_url) as r:
        r.flushall()
    # What the operator's resync does after a flush: the grants come back with the tokens agents hold.
    gateway.apply(manifests(agents.budget_name, budget_usd="3"), keep_tokens=True)
    # Until the audit has given the budget its spend back, no money call under it passes; reads do.
    assert agents.email() == "tollgate_unavailable"
    assert agents.stripe.v1.charges.retrieve(agents.charge.id).id == agents.charge.id
    gateway.start_auditor()
    gateway.wait_ledger()
    assert budget_spent(gateway, agents.budget) == 29 * DIME
    assert agents.refund() == "ok"  # the thirtieth fits
    assert agents.text() == "tollgate_budget_exceeded"
