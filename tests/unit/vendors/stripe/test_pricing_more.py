"""Money-moving Stripe routes outside the first table: priced from the request or from Stripe's objects,
or refused with a reason that names what makes them free."""

from typing import Any

import pytest

from tollgate.money import Money
from tollgate.vendors.base import Facts, Found, Invalid, Need, ObjectRef, Unpriced
from tollgate.vendors.stripe import STRIPE


def facts(
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    objects: dict | None = None,
    scope: bool = False,
):
    found = Found()
    for ref, obj in (objects or {}).items():
        found.objects[ref] = obj
        found.fresh.add(ref)
    return STRIPE.facts(STRIPE.match(method, path), params or {}, {}, found, scope)


def cost(f: Any) -> Money | None:
    assert isinstance(f, Facts), f
    return f.cost


CH = {
    "id": "ch_1",
    "amount": 5000,
    "amount_captured": 5000,
    "amount_refunded": 1200,
    "currency": "usd",
    "customer": "cus_A",
}


def test_the_legacy_charge_refund_is_priced_like_a_refund() -> None:
    assert cost(
        facts("POST", "/v1/charges/ch_1/refunds", {"amount": "700"}, {ObjectRef("charges", "ch_1"): CH})
    ) == Money.minor(700, "usd")
    # without an amount, what is left on the charge in the path, read fresh
    f = facts("POST", "/v1/charges/ch_1/refund")
    assert f == Need((ObjectRef("charges", "ch_1"),), fresh=True)
    assert cost(
        facts("POST", "/v1/charges/ch_1/refund", {}, {ObjectRef("charges", "ch_1"): CH})
    ) == Money.minor(3800, "usd")


def test_top_ups_and_treasury_flows_cost_their_amount() -> None:
    for path in ("/v1/topups", "/v1/treasury/outbound_payments", "/v1/treasury/outbound_transfers"):
        assert cost(facts("POST", path, {"amount": "2500", "currency": "usd"})) == Money.minor(2500, "usd")
    assert isinstance(facts("POST", "/v1/topups", {"currency": "usd"}), Invalid)


def test_a_customer_balance_credit_costs_its_absolute_amount() -> None:
    p = "/v1/customers/cus_A/balance_transactions"
    assert cost(facts("POST", p, {"amount": "-1500", "currency": "usd"})) == Money.minor(1500, "usd")
    assert cost(facts("POST", p, {"amount": "900", "currency": "eur"})) == Money.minor(900, "eur")
    assert isinstance(facts("POST", p, {"amount": "--1", "currency": "usd"}), Invalid)
    f = facts("POST", p, {"amount": "-1", "currency": "usd"}, scope=True)
    assert isinstance(f, Facts) and f.customers == {"cus_A"}


@pytest.mark.parametrize(
    ("path", "collection", "obj", "left"),
    [
        (
            "/v1/transfers/tr_1/reversals",
            "transfers",
            {"id": "tr_1", "amount": 4000, "amount_reversed": 1000, "currency": "usd"},
            3000,
        ),
        (
            "/v1/application_fees/fee_1/refunds",
            "application_fees",
            {"id": "fee_1", "amount": 300, "amount_refunded": 100, "currency": "usd"},
            200,
        ),
        (
            "/v1/application_fees/fee_1/refund",
            "application_fees",
            {"id": "fee_1", "amount": 300, "amount_refunded": 0, "currency": "usd"},
            300,
        ),
    ],
)
def test_reversals_cost_their_amount_or_what_is_left(
    path: str, collection: str, obj: dict, left: int
) -> None:
    ref = ObjectRef(collection, path.split("/")[3])
    assert facts("POST", path) == Need((ref,), fresh=True)
    assert cost(facts("POST", path, {}, {ref: obj})) == Money.minor(left, "usd")
    assert cost(facts("POST", path, {"amount": "50"}, {ref: obj})) == Money.minor(50, "usd")


def test_a_payout_reversal_costs_the_payout() -> None:
    ref = ObjectRef("payouts", "po_1")
    assert cost(
        facts(
            "POST", "/v1/payouts/po_1/reverse", {}, {ref: {"id": "po_1", "amount": 8000, "currency": "usd"}}
        )
    ) == Money.minor(8000, "usd")


INV = {
    "id": "in_1",
    "currency": "usd",
    "customer": "cus_A",
    "collection_method": "charge_automatically",
    "auto_advance": True,
    "amount_due": 4200,
    "amount_remaining": 4200,
}


def test_a_credit_note_costs_what_it_refunds_and_credits() -> None:
    ref = ObjectRef("invoices", "in_1")
    f = facts(
        "POST",
        "/v1/credit_notes",
        {"invoice": "in_1", "refund_amount": "500", "credit_amount": "200", "out_of_band_amount": "99"},
        {ref: INV},
    )
    assert cost(f) == Money.minor(700, "usd")
    assert isinstance(facts("POST", "/v1/credit_notes", {"invoice": "in_1"}, {ref: INV}), Unpriced)
    refused = facts("POST", "/v1/credit_notes", {"invoice": "in_1", "refunds[0][refund]": "re_1"}, {ref: INV})
    assert isinstance(refused, Unpriced) and "refund_amount" in refused.message
    scoped = facts(
        "POST", "/v1/credit_notes", {"invoice": "in_1", "refund_amount": "1"}, {ref: INV}, scope=True
    )
    assert isinstance(scoped, Facts) and scoped.customers == {"cus_A"}


def test_finalizing_an_invoice_stripe_charges_by_itself_costs_what_remains() -> None:
    ref = ObjectRef("invoices", "in_1")
    assert cost(facts("POST", "/v1/invoices/in_1/finalize", {}, {ref: INV})) == Money.minor(4200, "usd")
    assert cost(facts("POST", "/v1/invoices/in_1/finalize", {"auto_advance": "false"}, {ref: INV})) is None
    sent = {**INV, "collection_method": "send_invoice"}
    assert cost(facts("POST", "/v1/invoices/in_1/finalize", {}, {ref: sent})) is None


def test_invoices_are_free_until_stripe_would_charge_them_by_itself() -> None:
    assert cost(facts("POST", "/v1/invoices", {"customer": "cus_A"})) is None
    f = facts("POST", "/v1/invoices", {"customer": "cus_A", "auto_advance": "true"})
    assert isinstance(f, Unpriced) and "auto_advance" in f.message
    assert (
        cost(
            facts(
                "POST",
                "/v1/invoices",
                {"customer": "cus_A", "auto_advance": "true", "collection_method": "send_invoice"},
            )
        )
        is None
    )
    assert isinstance(facts("POST", "/v1/invoices/in_1", {"auto_advance": "true"}), Unpriced)


@pytest.mark.parametrize(
    ("params", "free"),
    [
        ({"customer": "cus_A", "items[0][price]": "price_1"}, False),
        ({"customer": "cus_A", "items[0][price]": "price_1", "payment_behavior": "default_incomplete"}, True),
        ({"customer": "cus_A", "items[0][price]": "price_1", "trial_period_days": "14"}, True),
        (
            {
                "customer": "cus_A",
                "items[0][price]": "price_1",
                "trial_period_days": "14",
                "add_invoice_items[0][price]": "price_2",
            },
            False,
        ),
        ({"customer": "cus_A", "items[0][price]": "price_1", "trial_end": "now"}, False),
        ({"customer": "cus_A", "items[0][price]": "price_1", "collection_method": "send_invoice"}, True),
    ],
)
def test_creating_a_subscription_is_free_only_when_its_first_invoice_cannot_be_charged_by_this_call(
    params: dict, free: bool
) -> None:
    f = facts("POST", "/v1/subscriptions", params)
    if free:
        assert cost(f) is None
    else:
        assert isinstance(f, Unpriced) and "payment_behavior=default_incomplete" in f.message


@pytest.mark.parametrize(
    ("params", "free"),
    [
        ({"coupon": "SPRING25"}, True),
        ({"discounts[0][coupon]": "SPRING25"}, True),
        ({"cancel_at_period_end": "true"}, True),
        ({"trial_end": "1900000000"}, True),
        ({"trial_end": "now"}, False),
        ({"items[0][price]": "price_2", "proration_behavior": "create_prorations"}, False),
        ({"coupon": "X", "proration_behavior": "always_invoice"}, False),
    ],
)
def test_a_subscription_update_is_free_when_it_bills_nothing_now(params: dict, free: bool) -> None:
    f = facts("POST", "/v1/subscriptions/sub_1", params)
    if free:
        assert cost(f) is None
    else:
        assert isinstance(f, Unpriced) and "subscription_items" in f.message


def test_subscription_items_are_free_when_their_prorations_wait_for_the_next_invoice() -> None:
    ok = {"proration_behavior": "create_prorations", "quantity": "3"}
    assert cost(facts("POST", "/v1/subscription_items/si_1", ok)) is None
    assert (
        cost(facts("POST", "/v1/subscription_items", {**ok, "subscription": "sub_1", "price": "price_1"}))
        is None
    )
    f = facts("POST", "/v1/subscription_items/si_1", {"quantity": "3"})
    assert isinstance(f, Unpriced) and "proration_behavior=create_prorations" in f.message
    assert isinstance(facts("POST", "/v1/subscription_items/si_1", {**ok, "price": "price_9"}), Unpriced)
    assert isinstance(
        facts("DELETE", "/v1/subscription_items/si_1", {"proration_behavior": "always_invoice"}), Unpriced
    )


def test_resuming_a_subscription_is_free_only_with_an_unchanged_billing_anchor() -> None:
    assert (
        cost(facts("POST", "/v1/subscriptions/sub_1/resume", {"billing_cycle_anchor": "unchanged"})) is None
    )
    f = facts("POST", "/v1/subscriptions/sub_1/resume")
    assert isinstance(f, Unpriced) and "billing_cycle_anchor=unchanged" in f.message


def test_a_monetary_credit_grant_costs_its_value() -> None:
    p = {
        "customer": "cus_A",
        "amount[type]": "monetary",
        "amount[monetary][value]": "1000",
        "amount[monetary][currency]": "usd",
        "category": "promotional",
    }
    assert cost(facts("POST", "/v1/billing/credit_grants", p)) == Money.minor(1000, "usd")


@pytest.mark.parametrize(
    ("method", "path", "words"),
    [
        ("POST", "/v1/quotes/qt_1/accept", "accepting a quote"),
        ("POST", "/v1/issuing/authorizations/iauth_1/approve", "Issuing"),
        ("POST", "/v1/treasury/credit_reversals", "received credit"),
        ("POST", "/v2/money_management/outbound_payments", "outbound payment"),
        ("POST", "/v1/subscription_schedules", "schedule"),
    ],
)
def test_routes_only_stripe_could_price_are_refused_with_their_reason(
    method: str, path: str, words: str
) -> None:
    f = facts(method, path)
    assert isinstance(f, Unpriced) and words in f.message


@pytest.mark.parametrize(
    ("method", "path", "params", "customers", "unscoped"),
    [
        ("GET", "/v1/products", {}, set(), None),
        ("POST", "/v1/checkout/sessions", {"customer": "cus_A"}, {"cus_A"}, None),
        ("POST", "/v1/checkout/sessions", {}, set(), "the call names no customer"),
        ("GET", "/v1/events", {}, set(), "the list cannot be filtered by customer"),
        ("GET", "/v1/files/file_1", {}, set(), "Tollgate cannot tell which customers"),
    ],
)
def test_every_new_route_says_whom_it_touches(
    method: str, path: str, params: dict, customers: set, unscoped: str | None
) -> None:
    f = facts(method, path, params, scope=True)
    assert isinstance(f, Facts), f
    assert f.customers == customers
    assert (f.unscoped or None) is None if unscoped is None else unscoped in (f.unscoped or "")


def test_an_object_in_a_nested_collection_is_read_where_stripe_serves_it() -> None:
    f = facts("GET", "/v1/checkout/sessions/cs_test_1", scope=True)
    assert f == Need((ObjectRef("checkout/sessions", "cs_test_1"),), fresh=False)
    assert (
        STRIPE.lookup_path(ObjectRef("checkout/sessions", "cs_test_1")) == "/v1/checkout/sessions/cs_test_1"
    )


def test_a_connected_account_in_the_path_must_be_allowed() -> None:
    ep = STRIPE.match("POST", "/v1/accounts/acct_1X/external_accounts")
    assert STRIPE.accounts(ep, {}, {}) == {"acct_1X"}
    assert STRIPE.accounts(STRIPE.match("GET", "/v1/accounts"), {}, {}) == frozenset()


def test_setting_a_customers_balance_directly_is_refused_in_favour_of_a_priced_balance_transaction() -> None:
    for path in ("/v1/customers", "/v1/customers/cus_A"):
        f = facts("POST", path, {"balance": "-50000"})
        assert isinstance(f, Unpriced) and "balance_transactions" in f.message
        assert cost(facts("POST", path, {"email": "a@example.com"})) is None


def test_redirecting_a_connected_accounts_payouts_is_refused() -> None:
    f = facts("POST", "/v1/accounts/acct_1X/external_accounts", {"external_account": "btok_1"})
    assert isinstance(f, Unpriced) and "automatic payouts" in f.message
    assert isinstance(
        facts("POST", "/v1/accounts/acct_1X", {"settings[payouts][schedule][interval]": "daily"}), Unpriced
    )
    assert isinstance(facts("POST", "/v1/accounts/acct_1X", {"external_account": "btok_1"}), Unpriced)
    assert cost(facts("POST", "/v1/accounts/acct_1X", {"metadata[team]": "ops"})) is None
    assert cost(facts("DELETE", "/v1/accounts/acct_1X/external_accounts/ba_1")) is None


def test_what_reaches_every_customers_data_is_out_of_scope() -> None:
    for method, path in (("POST", "/v1/webhook_endpoints"), ("POST", "/v1/file_links")):
        f = facts(method, path, {}, scope=True)
        assert isinstance(f, Facts) and f.unscoped, (method, path)


def test_a_token_names_a_customer_only_when_it_clones_one() -> None:
    plain = facts("POST", "/v1/tokens", {"card[number]": "4242"}, scope=True)
    assert isinstance(plain, Facts) and not plain.customer_related
    cloned = facts("POST", "/v1/tokens", {"customer": "cus_B"}, scope=True)
    assert isinstance(cloned, Facts) and cloned.customers == {"cus_B"}
