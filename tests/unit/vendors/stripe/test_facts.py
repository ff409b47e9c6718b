"""Stripe pricing and scoping, including the objects that must be read from Stripe first."""

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
    fresh: bool = True,
    scope: bool = True,
    headers: dict | None = None,
):
    found = Found()
    for ref, obj in (objects or {}).items():
        found.objects[ref] = obj
        if fresh:
            found.fresh.add(ref)
    ep = STRIPE.match(method, path)
    return STRIPE.facts(ep, params or {}, headers or {}, found, scope)


CH = ObjectRef("charges", "ch_1")
CHARGE = {
    "id": "ch_1",
    "amount": 5000,
    "amount_captured": 5000,
    "amount_refunded": 1200,
    "currency": "usd",
    "customer": "cus_A",
}


@pytest.mark.parametrize(
    ("method", "path", "params", "cost"),
    [
        pytest.param(
            "POST",
            "/v1/charges",
            {"amount": "1999", "currency": "usd"},
            Money.minor(1999, "usd"),
            id="charge",
        ),
        pytest.param(
            "POST",
            "/v1/charges",
            {"amount": "1999", "currency": "usd", "capture": "false"},
            None,
            id="uncaptured charge is an authorisation only",
        ),
        pytest.param(
            "POST",
            "/v1/payment_intents",
            {"amount": "500", "currency": "eur"},
            None,
            id="payment intent without confirm moves nothing",
        ),
        pytest.param(
            "POST",
            "/v1/payment_intents",
            {"amount": "500", "currency": "eur", "confirm": "true"},
            Money.minor(500, "eur"),
            id="payment intent with confirm",
        ),
        pytest.param(
            "POST",
            "/v1/payment_intents",
            {"amount": "500", "currency": "usd", "confirm": "true", "capture_method": "manual"},
            None,
            id="manual capture only authorises",
        ),
        pytest.param(
            "POST",
            "/v1/transfers",
            {"amount": "700", "currency": "usd", "destination": "acct_1"},
            Money.minor(700, "usd"),
            id="transfer",
        ),
        pytest.param(
            "POST",
            "/v1/payouts",
            {"amount": "100", "currency": "jpy"},
            Money.minor(100, "jpy"),
            id="payout in a zero-decimal currency",
        ),
        pytest.param("GET", "/v1/charges/ch_1", {}, None, id="reads are free"),
        pytest.param("DELETE", "/v1/subscriptions/sub_1", {}, None, id="plain cancel is free"),
        pytest.param(
            "POST",
            "/v1/subscriptions/sub_1",
            {"cancel_at_period_end": "true"},
            None,
            id="cancel at period end is free",
        ),
    ],
)
def test_cost_is_parsed_from_the_request(method: str, path: str, params: dict, cost: Money | None) -> None:
    got = facts(method, path, params, scope=False)
    assert isinstance(got, Facts)
    assert got.cost == cost


def test_refund_with_amount_needs_only_the_charge_currency_which_may_be_cached() -> None:
    need = facts("POST", "/v1/refunds", {"charge": "ch_1", "amount": "300"}, scope=False)
    assert need == Need((CH,), fresh=False)
    got = facts(
        "POST",
        "/v1/refunds",
        {"charge": "ch_1", "amount": "300"},
        {CH: {"currency": "usd"}},
        fresh=False,
        scope=False,
    )
    assert isinstance(got, Facts) and got.cost == Money.minor(300, "usd")


def test_full_refund_reads_the_charge_fresh_and_prices_what_is_left() -> None:
    # a cached copy is not enough: amounts move
    assert facts("POST", "/v1/refunds", {"charge": "ch_1"}, {CH: CHARGE}, fresh=False) == Need(
        (CH,), fresh=True
    )
    got = facts("POST", "/v1/refunds", {"charge": "ch_1"}, {CH: CHARGE})
    assert isinstance(got, Facts)
    assert got.cost == Money.minor(3800, "usd")
    assert got.customers == {"cus_A"}


def test_full_refund_through_a_payment_intent_follows_its_latest_charge() -> None:
    pi = ObjectRef("payment_intents", "pi_1")
    assert facts("POST", "/v1/refunds", {"payment_intent": "pi_1"}) == Need((pi,), fresh=True)
    assert facts("POST", "/v1/refunds", {"payment_intent": "pi_1"}, {pi: {"latest_charge": "ch_1"}}) == Need(
        (CH,), fresh=True
    )
    got = facts(
        "POST", "/v1/refunds", {"payment_intent": "pi_1"}, {pi: {"latest_charge": "ch_1"}, CH: CHARGE}
    )
    assert isinstance(got, Facts) and got.cost == Money.minor(3800, "usd")


def test_a_refund_of_an_amount_through_a_cached_payment_intent_reads_the_intent_for_its_charge() -> None:
    pi = ObjectRef("payment_intents", "pi_1")
    cached = {"id": "pi_1", "currency": "usd"}  # what the lookup cache keeps of an intent
    params = {"payment_intent": "pi_1", "amount": "600"}
    assert facts("POST", "/v1/refunds", params, {pi: cached}, fresh=False) == Need((pi,), fresh=True)
    got = facts("POST", "/v1/refunds", params, {pi: {**cached, "latest_charge": "ch_1"}, CH: CHARGE})
    assert isinstance(got, Facts) and got.cost == Money.minor(600, "usd")


def test_capture_without_amount_prices_what_is_uncaptured() -> None:
    charge = {**CHARGE, "amount_captured": 0}
    got = facts("POST", "/v1/charges/ch_1/capture", {}, {CH: charge})
    assert isinstance(got, Facts) and got.cost == Money.minor(5000, "usd")


def test_confirming_a_payment_intent_prices_its_amount_unless_capture_is_manual() -> None:
    pi = ObjectRef("payment_intents", "pi_1")
    obj = {"id": "pi_1", "amount": 900, "currency": "usd", "capture_method": "automatic", "customer": "cus_A"}
    got = facts("POST", "/v1/payment_intents/pi_1/confirm", {}, {pi: obj})
    assert isinstance(got, Facts) and got.cost == Money.minor(900, "usd")
    got = facts("POST", "/v1/payment_intents/pi_1/confirm", {}, {pi: {**obj, "capture_method": "manual"}})
    assert isinstance(got, Facts) and got.cost is None


@pytest.mark.parametrize(
    ("method", "path", "params", "expected"),
    [
        pytest.param(
            "POST", "/v1/refunds", {"charge": "ch_1", "payment_intent": "pi_1"}, Invalid, id="both targets"
        ),
        pytest.param("POST", "/v1/refunds", {}, Invalid, id="no target"),
        pytest.param(
            "POST", "/v1/charges", {"amount": "-5", "currency": "usd"}, Invalid, id="negative amount"
        ),
        pytest.param(
            "POST", "/v1/charges", {"amount": "5.5", "currency": "usd"}, Invalid, id="fractional amount"
        ),
        pytest.param("POST", "/v1/charges", {"currency": "usd"}, Invalid, id="missing amount"),
        pytest.param("POST", "/v1/payouts", {"amount": "5"}, Invalid, id="missing currency"),
        pytest.param(
            "POST",
            "/v1/subscriptions/sub_1",
            {"items[0][price]": "price_1"},
            Unpriced,
            id="changing subscription items bills",
        ),
        pytest.param(
            "DELETE", "/v1/subscriptions/sub_1", {"invoice_now": "true"}, Unpriced, id="invoice now"
        ),
        pytest.param("POST", "/v1/subscriptions", {}, Unpriced, id="unknown write"),
    ],
)
def test_requests_that_cannot_be_priced_exactly_are_refused(
    method: str, path: str, params: dict, expected: type
) -> None:
    assert isinstance(facts(method, path, params, scope=False), expected)


@pytest.mark.parametrize(
    ("method", "path", "params", "customers", "unscoped"),
    [
        pytest.param(
            "POST",
            "/v1/charges",
            {"amount": "1", "currency": "usd", "customer": "cus_A"},
            {"cus_A"},
            None,
            id="customer parameter",
        ),
        pytest.param(
            "POST",
            "/v1/charges",
            {"amount": "1", "currency": "usd"},
            set(),
            "names no customer",
            id="charge without customer",
        ),
        pytest.param(
            "GET", "/v1/charges", {"customer": "cus_A"}, {"cus_A"}, None, id="list filtered by customer"
        ),
        pytest.param("GET", "/v1/charges", {}, set(), "not filtered", id="unfiltered list"),
        pytest.param("GET", "/v1/customers/cus_B", {}, {"cus_B"}, None, id="customer in the path"),
        pytest.param("GET", "/v1/customers", {}, set(), "cannot tell", id="customer list"),
        pytest.param("GET", "/v1/whatever", {}, set(), "cannot tell", id="unknown read"),
    ],
)
def test_customers_touched_from_the_request(
    method: str, path: str, params: dict, customers: set, unscoped: str | None
) -> None:
    got = facts(method, path, params)
    assert isinstance(got, Facts)
    assert got.customers == customers
    assert (got.unscoped is None) if unscoped is None else (unscoped in str(got.unscoped))


def test_customer_of_an_object_in_the_path_is_read_from_stripe() -> None:
    assert facts("GET", "/v1/charges/ch_1") == Need((CH,), fresh=False)
    got = facts("GET", "/v1/charges/ch_1", objects={CH: {"customer": "cus_A"}}, fresh=False)
    assert isinstance(got, Facts) and got.customers == {"cus_A"}


def test_customer_of_a_refund_is_its_charges_customer() -> None:
    re_ = ObjectRef("refunds", "re_1")
    assert facts("GET", "/v1/refunds/re_1") == Need((re_,), fresh=False)
    assert facts("GET", "/v1/refunds/re_1", objects={re_: {"charge": "ch_1"}}) == Need((CH,), fresh=False)
    got = facts(
        "GET", "/v1/refunds/re_1", objects={re_: {"charge": "ch_1"}, CH: {"customer": {"id": "cus_A"}}}
    )
    assert isinstance(got, Facts) and got.customers == {"cus_A"}


def test_without_a_customer_scope_no_object_is_read_for_scoping() -> None:
    got = facts("GET", "/v1/charges/ch_1", scope=False)
    assert isinstance(got, Facts) and got.customers == frozenset() and got.customer_related


def test_connected_accounts_come_from_the_header_and_transfer_destinations() -> None:
    ep = STRIPE.match("POST", "/v1/transfers")
    accounts = STRIPE.accounts(ep, {"destination": "acct_dest"}, {"stripe-account": "acct_hdr"})
    assert accounts == {"acct_dest", "acct_hdr"}


def test_only_immutable_fields_are_cached() -> None:
    assert STRIPE.cacheable(CH, CHARGE) == {"id": "ch_1", "currency": "usd", "customer": "cus_A"}
    assert STRIPE.cacheable(CH, {**CHARGE, "customer": None}) is None


SCOPED_READS = [
    ("GET", "/v1/balance_transactions", {"expand[]": ["data.source"]}),
    ("GET", "/v1/balance_transactions", {}),
    ("GET", "/v1/transfers", {}),
    ("GET", "/v1/payouts", {}),
    ("GET", "/v1/charges/search", {"query": "amount>0"}),
    ("GET", "/v1/customers/search", {"query": "email:'a@x.com'"}),
    ("GET", "/v1/balance", {"expand[]": ["x"]}),
    ("GET", "/v1/payouts/po_1", {"expand[0]": "balance_transaction"}),
    ("GET", "/v1/charges", {"customer": "cus_A", "expand[]": ["data.transfer"]}),
    ("GET", "/v1/charges", {"customer": "cus_A", "expand[]": ["data.customer", "data.application_fee"]}),
]


@pytest.mark.parametrize(("method", "path", "params"), SCOPED_READS)
def test_under_a_customer_scope_reads_that_can_reach_other_customers_are_out_of_scope(
    method: str, path: str, params: dict
) -> None:
    f = facts(method, path, params)
    assert isinstance(f, Facts), f
    assert f.customer_related and f.unscoped is not None


@pytest.mark.parametrize(("method", "path", "params"), SCOPED_READS)
def test_without_a_customer_scope_the_same_reads_are_free(method: str, path: str, params: dict) -> None:
    f = facts(method, path, params, scope=False)
    assert isinstance(f, Facts) and f.cost is None


def test_expanding_references_of_the_same_customer_stays_in_scope() -> None:
    f = facts(
        "GET",
        "/v1/charges",
        {"customer": "cus_A", "expand[]": ["data.customer", "data.invoice.subscription", "data.refunds"]},
    )
    assert isinstance(f, Facts) and f.unscoped is None and f.customers == {"cus_A"}
    one = facts("GET", "/v1/charges/ch_1", {"expand[0]": "balance_transaction"}, {CH: CHARGE})
    assert isinstance(one, Facts) and one.unscoped is None and one.customers == {"cus_A"}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"charge": "ch_other/../ch_mine"}, "charge"),
        ({"charge": "ch_1?expand[]=x"}, "charge"),
        ({"charge": "ch_1 "}, "charge"),
        ({"payment_intent": "../pi_1"}, "payment_intent"),
        ({"charge": "charges"}, "charge"),
    ],
)
def test_ids_outside_stripes_grammar_are_refused_before_any_lookup(params: dict, param: str) -> None:
    f = facts("POST", "/v1/refunds", params)
    assert isinstance(f, Invalid) and f.param == param


def test_path_segments_that_are_no_object_id_match_no_route() -> None:
    for path in ("/v1/charges/ch.1", "/v1/customers/Cus_1", "/v1/charges/_1"):
        assert STRIPE.match("GET", path).name == "unknown.read"
    # a search is its own route, not a charge, and can reach any customer
    search = STRIPE.match("GET", "/v1/charges/search")
    assert (search.name, search.scope) == ("charges.search", "unknown")
    assert STRIPE.match("POST", "/v1/charges/search/capture").name == "unknown.write"
    assert STRIPE.match("GET", "/v1/charges/ch_3MxYz_9").name == "charges.retrieve"


def test_a_customer_id_parameter_follows_the_grammar_too() -> None:
    f = facts("GET", "/v1/charges", {"customer": "cus_A,cus_B"})
    assert isinstance(f, Invalid) and f.param == "customer"


def test_stripe_context_names_connected_accounts_like_stripe_account() -> None:
    ep = STRIPE.match("GET", "/v1/balance")
    assert STRIPE.accounts(ep, {}, {"stripe-context": "acct_1/acct_2"}) == {"acct_1", "acct_2"}
