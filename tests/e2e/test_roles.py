"""The seeded agent roles of deploy/examples/roles/, end to end: each role's typical calls with stripe-python
(StripeClient style, the legacy module style, and async) through the real Envoy and ext_authz, to a
Stripe fake in Stripe's JSON shape (tests/support/stripe_fake.py) on both Stripe hosts. What a role needs
passes; what it must not do is refused with the documented error, and nothing of it reaches Stripe."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import stripe
from tests.support.recorder import RecordingUpstream
from tests.support.stripe_fake import StripeFake

from tollgate.local.gateway import LocalGateway
from tollgate.policy.manifests import SecretObject, load_path

ROLES = Path(__file__).parents[2] / "deploy" / "examples" / "roles"
REAL_KEY = "sk_test_roles_real_platform_key"
SCOPED = "cus_Q1collections001"  # in the billing & collections queue
OTHER = "cus_NotInTheQueue"


def seed(fake: StripeFake) -> None:
    for n in range(5):
        fake.add(
            {
                "id": f"ch_role{n}",
                "object": "charge",
                "amount": 5000,
                "amount_captured": 5000,
                "amount_refunded": 0,
                "currency": "usd",
                "customer": "cus_support1",
                "status": "succeeded",
            }
        )
    for cid in (SCOPED, OTHER, "cus_support1", "cus_subs1"):
        fake.add({"id": cid, "object": "customer", "email": f"{cid}@example.com"})
    for iid, customer in (("in_open1", SCOPED), ("in_other1", OTHER)):
        fake.add(
            {
                "id": iid,
                "object": "invoice",
                "customer": customer,
                "currency": "usd",
                "status": "open",
                "amount_due": 4200,
                "amount_paid": 0,
                "amount_remaining": 4200,
                "collection_method": "charge_automatically",
            }
        )
    fake.add({"id": "sub_role1", "object": "subscription", "customer": "cus_subs1", "status": "active"})
    fake.add({"id": "dp_role1", "object": "dispute", "charge": "ch_role0", "amount": 5000, "currency": "usd"})


@dataclasses.dataclass
class Roles:
    gateway: LocalGateway
    fake: StripeFake
    api: RecordingUpstream
    files: RecordingUpstream
    tokens: dict[str, str]

    def client(self, key: str, **kw: Any) -> stripe.StripeClient:
        return stripe.StripeClient(
            self.tokens[f"agents/{key}"],
            base_addresses={
                "api": self.gateway.base_url("stripe"),
                "files": self.gateway.base_url("stripe-files"),
            },
            max_network_retries=0,
            **kw,
        )

    def reached(self) -> list[tuple[str, str]]:
        return [(r.method, r.path.split("?")[0]) for r in self.api.requests + self.files.requests]


@pytest.fixture(scope="module")
def fake() -> StripeFake:
    return StripeFake()


@pytest.fixture(scope="module")
def stripe_api(fake: StripeFake) -> Iterator[RecordingUpstream]:
    with RecordingUpstream(fake) as up:
        yield up


@pytest.fixture(scope="module")
def stripe_files(fake: StripeFake) -> Iterator[RecordingUpstream]:
    with RecordingUpstream(fake) as up:
        yield up


@pytest.fixture(scope="module")
def gateway_options(stripe_api: RecordingUpstream, stripe_files: RecordingUpstream) -> dict[str, Any]:
    return {"upstreams": {"stripe": stripe_api.url, "stripe-files": stripe_files.url}}


@pytest.fixture
def roles(
    gateway: LocalGateway, fake: StripeFake, stripe_api: RecordingUpstream, stripe_files: RecordingUpstream
) -> Roles:
    """Every role's example policy and key, as committed (the dispute handler's key resumed), on a fresh
    Stripe fake with no spend."""
    fake.objects.clear()
    seed(fake)
    with redis.Redis.from_url(gateway.redis_url) as r:
        r.flushall()
    m = load_path(ROLES)
    for name in ("stripe-platform-key", "stripe-readonly-key"):
        m.secrets[f"agents/{name}"] = SecretObject("agents", name, {"api-key": REAL_KEY})
    bot = m.keys["agents/disputes-bot"]
    m.keys[bot.id] = dataclasses.replace(bot, spec=bot.spec.model_copy(update={"suspended": False}))
    tokens = gateway.apply(m)
    stripe_api.clear()
    stripe_files.clear()
    return Roles(gateway, fake, stripe_api, stripe_files, tokens)


def refused_with(exc: pytest.ExceptionInfo[stripe.StripeError], code: str) -> None:
    assert exc.value.error is not None and exc.value.error.code == code, exc.value
    assert exc.value.headers is not None and exc.value.headers["stripe-should-retry"] == "false"


# ---- support refunds ------------------------------------------------------------------------------------


def test_support_refunds_a_ticketed_charge_and_is_refused_above_its_limit(roles: Roles) -> None:
    agent = roles.client("support-bot")
    refund = agent.v1.refunds.create(
        params={"charge": "ch_role1", "amount": 1500, "metadata": {"ticket": "T-42"}}
    )
    assert (refund.amount, refund.charge) == (1500, "ch_role1")
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.refunds.create(
            params={"charge": "ch_role1", "amount": 20000, "metadata": {"ticket": "T-43"}}
        )
    refused_with(exc, "tollgate_param_rule_broken")
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.refunds.create(params={"charge": "ch_role1", "amount": 100})  # no ticket
    refused_with(exc, "tollgate_param_rule_broken")
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.payouts.create(params={"amount": 100, "currency": "usd"})
    refused_with(exc, "tollgate_endpoint_not_allowed")
    assert roles.fake.snapshot("ch_role1")["amount_refunded"] == 1500
    assert ("POST", "/v1/payouts") not in roles.reached()


def test_support_refunds_in_the_legacy_module_style(roles: Roles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe, "api_key", roles.tokens["agents/support-bot"])
    monkeypatch.setattr(stripe, "api_base", roles.gateway.base_url("stripe"))
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    refund = stripe.Refund.create(charge="ch_role2", amount=2500, metadata={"ticket": "T-7"})
    assert refund.amount == 2500
    assert stripe.Charge.retrieve("ch_role2").amount_refunded == 2500
    with pytest.raises(stripe.PermissionError) as exc:
        stripe.Refund.create(charge="ch_role3", amount=100)
    refused_with(exc, "tollgate_param_rule_broken")


# ---- billing & collections -----------------------------------------------------------------------------


def test_collections_pays_an_open_invoice_in_its_queue_and_no_other(roles: Roles) -> None:
    agent = roles.client("collections-bot")
    assert agent.v1.invoices.pay("in_open1").status == "paid"
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.invoices.pay("in_other1")
    refused_with(exc, "tollgate_customer_out_of_scope")
    pi = agent.v1.payment_intents.create(
        params={
            "amount": 4200,
            "currency": "usd",
            "customer": SCOPED,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "off_session": True,
        }
    )
    assert pi.status == "succeeded"
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.payment_intents.create(
            params={
                "amount": 4200,
                "currency": "usd",
                "customer": OTHER,
                "confirm": True,
                "off_session": True,
            }
        )
    refused_with(exc, "tollgate_customer_out_of_scope")
    assert roles.fake.snapshot("in_other1")["status"] == "open"


def test_collections_in_the_legacy_module_style(roles: Roles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe, "api_key", roles.tokens["agents/collections-bot"])
    monkeypatch.setattr(stripe, "api_base", roles.gateway.base_url("stripe"))
    assert stripe.Invoice.pay("in_open1").status == "paid"
    with pytest.raises(stripe.PermissionError) as exc:
        stripe.Invoice.pay("in_other1")
    refused_with(exc, "tollgate_customer_out_of_scope")


# ---- subscription manager -------------------------------------------------------------------------------


def test_the_subscription_manager_applies_a_coupon_and_cancels_at_period_end(roles: Roles) -> None:
    agent = roles.client("subscriptions-bot")
    sub = agent.v1.subscriptions.update("sub_role1", params={"coupon": "SPRING25"})
    assert sub.discount is not None and sub.discount.coupon.id == "SPRING25"
    assert agent.v1.subscriptions.update(
        "sub_role1", params={"cancel_at_period_end": True}
    ).cancel_at_period_end
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.subscriptions.cancel("sub_role1")  # at once: a person's decision
    refused_with(exc, "tollgate_endpoint_not_allowed")
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.subscriptions.update("sub_role1", params={"items": [{"price": "price_yearly"}]})
    refused_with(exc, "tollgate_endpoint_unpriced")
    assert "subscription_items" in exc.value.user_message  # type: ignore[operator]
    assert "items" not in roles.fake.snapshot("sub_role1")


def test_the_subscription_manager_in_the_legacy_module_style(
    roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe, "api_key", roles.tokens["agents/subscriptions-bot"])
    monkeypatch.setattr(stripe, "api_base", roles.gateway.base_url("stripe"))
    assert stripe.Subscription.modify("sub_role1", coupon="WINBACK").discount.coupon.id == "WINBACK"
    with pytest.raises(stripe.PermissionError) as exc:
        stripe.Subscription.modify("sub_role1", trial_end="now")
    refused_with(exc, "tollgate_endpoint_unpriced")


# ---- read-only analytics --------------------------------------------------------------------------------


def test_analytics_pages_through_every_charge_and_writes_nothing(roles: Roles) -> None:
    agent = roles.client("analytics-bot")
    ids = [c.id for c in agent.v1.charges.list(params={"limit": 2}).auto_paging_iter()]
    assert ids == [f"ch_role{n}" for n in range(5)]
    assert sum(1 for m, p in roles.reached() if (m, p) == ("GET", "/v1/charges")) == 3  # three pages
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.refunds.create(params={"charge": "ch_role0"})
    refused_with(exc, "tollgate_endpoint_not_allowed")


async def test_analytics_reads_with_the_async_client(roles: Roles) -> None:
    agent = roles.client("analytics-bot", http_client=stripe.HTTPXClient())
    charges = await agent.v1.charges.list_async(params={"limit": 3})
    assert [c.id for c in charges.data] == ["ch_role0", "ch_role1", "ch_role2"] and charges.has_more
    with pytest.raises(stripe.PermissionError) as exc:
        await agent.v1.customers.create_async(params={"email": "x@example.com"})
    refused_with(exc, "tollgate_endpoint_not_allowed")


def test_analytics_in_the_legacy_module_style(roles: Roles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe, "api_key", roles.tokens["agents/analytics-bot"])
    monkeypatch.setattr(stripe, "api_base", roles.gateway.base_url("stripe"))
    assert len(list(stripe.Charge.list(limit=2).auto_paging_iter())) == 5


# ---- dispute handler ------------------------------------------------------------------------------------


def test_the_dispute_handler_uploads_evidence_and_attaches_it_but_never_submits_or_closes(
    roles: Roles,
) -> None:
    agent = roles.client("disputes-bot")
    upload = io.BytesIO(b"%PDF-1.4 shipping receipt for order 1234")
    upload.name = "receipt.pdf"
    f = agent.v1.files.create(params={"purpose": "dispute_evidence", "file": upload})
    assert f.id.startswith("file_") and f.purpose == "dispute_evidence"
    (sent,) = roles.files.requests
    assert sent.path == "/v1/files" and b"shipping receipt for order 1234" in sent.body
    assert sent.header("authorization") == f"Bearer {REAL_KEY}"
    dp = agent.v1.disputes.update(
        "dp_role1",
        params={"evidence": {"uncategorized_file": f.id, "product_description": "Blue mug"}},
        options={"stripe_account": "acct_1DisputesExample"},
    )
    assert dp.evidence["uncategorized_file"] == f.id
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.disputes.update("dp_role1", params={"submit": True})
    refused_with(exc, "tollgate_param_rule_broken")
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.disputes.close("dp_role1")
    refused_with(exc, "tollgate_endpoint_not_allowed")
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.disputes.update(
            "dp_role1", params={"metadata": {"k": "v"}}, options={"stripe_account": "acct_other"}
        )
    refused_with(exc, "tollgate_account_not_allowed")
    assert "submit" not in roles.fake.snapshot("dp_role1")


def test_the_dispute_handler_uploads_in_the_legacy_module_style(
    roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe, "api_key", roles.tokens["agents/disputes-bot"])
    monkeypatch.setattr(stripe, "api_base", roles.gateway.base_url("stripe"))
    monkeypatch.setattr(stripe, "upload_api_base", roles.gateway.base_url("stripe-files"))
    f = stripe.File.create(purpose="dispute_evidence", file=io.BytesIO(b"evidence"))
    assert f.purpose == "dispute_evidence"
    # The API prefix does not take uploads: the SDK's files host is the gateway's /stripe-files.
    monkeypatch.setattr(stripe, "upload_api_base", roles.gateway.base_url("stripe"))
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe.File.create(purpose="dispute_evidence", file=io.BytesIO(b"evidence"))
    assert exc.value.error is not None and exc.value.error.code == "tollgate_request_invalid"
    assert "/stripe-files" in str(exc.value.user_message)


# ---- payment capture ------------------------------------------------------------------------------------


def test_payment_capture_charges_a_saved_card_in_one_call_and_counts_it(roles: Roles) -> None:
    agent = roles.client("capture-bot")
    pi = agent.v1.payment_intents.create(
        params={
            "amount": 15000,
            "currency": "usd",
            "customer": "cus_support1",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "off_session": True,
        }
    )
    assert pi.status == "succeeded"
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.payment_intents.create(
            params={"amount": 15000, "currency": "usd", "off_session": True}
        )  # not confirmed
    refused_with(exc, "tollgate_param_rule_broken")
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.payment_intents.create(
            params={"amount": 25000, "currency": "usd", "confirm": True, "off_session": True}
        )
    refused_with(exc, "tollgate_param_rule_broken")
    for _ in range(10):  # $150 at a time: the seventh would make $1,050 of a $1,000 cap
        try:
            agent.v1.payment_intents.create(
                params={"amount": 15000, "currency": "usd", "confirm": True, "off_session": True}
            )
        except stripe.CardError as err:
            assert err.error is not None and err.error.code == "tollgate_cap_exceeded"
            break
    else:
        pytest.fail("the daily cap never stopped the agent")
    created = [r for r in roles.api.requests if (r.method, r.path) == ("POST", "/v1/payment_intents")]
    assert len(created) == 6  # $900 went through; the seventh charge would have made $1,050


def test_payment_capture_in_the_legacy_module_style(roles: Roles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe, "api_key", roles.tokens["agents/capture-bot"])
    monkeypatch.setattr(stripe, "api_base", roles.gateway.base_url("stripe"))
    pi = stripe.PaymentIntent.create(amount=900, currency="usd", confirm=True, off_session=True)
    assert pi.status == "succeeded"
    with pytest.raises(stripe.PermissionError) as exc:
        stripe.Refund.create(payment_intent=pi.id)
    refused_with(exc, "tollgate_endpoint_not_allowed")
