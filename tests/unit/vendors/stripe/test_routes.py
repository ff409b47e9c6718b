"""The route table covers every route the installed stripe SDK can call, each with a pricing and a scope
rule; the money-moving routes of before are priced as before; unknown paths stay refused."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from tollgate.cli.stripe_sdk import sdk_routes, sdk_version
from tollgate.vendors.stripe import STRIPE, catalog, endpoints

PRICINGS = {
    "free",
    "unpriced",
    "charge",
    "charge_capture",
    "charge_refund",
    "pi_create",
    "pi_confirm",
    "pi_capture",
    "refund",
    "amount",
    "object_amount",
    "transfer_reversal",
    "fee_refund",
    "signed_amount",
    "credit_note",
    "credit_grant",
    "invoice_create",
    "invoice_update",
    "invoice_finalize",
    "invoice_pay",
    "sub_create",
    "sub_update",
    "sub_item",
    "sub_resume",
    "sub_cancel",
    "customer_write",
    "account_update",
}
SCOPES = {
    "none",
    "param",
    "list",
    "account_list",
    "customer_path",
    "object",
    "refund_target",
    "charge_filter",
    "account",
    "unknown",
    "ref:invoice",
    "ref:subscription",
    "optional_param",
}


def test_every_route_the_installed_sdk_can_call_is_in_the_table() -> None:
    known = {(r.method, r.template) for r in endpoints.ROUTES}
    missing = [
        (r.method, r.path, r.name) for r in sdk_routes() if (r.method, catalog.template(r.path)) not in known
    ]
    assert not missing, f"stripe {sdk_version()} calls routes the table does not classify: {missing[:10]}"
    assert len(known) >= 650


def test_the_committed_table_is_what_the_rules_make_of_the_sdk() -> None:
    rows = catalog.table((r.method, r.path, r.name, r.api) for r in sdk_routes())
    committed = resources.files("tollgate.vendors.stripe").joinpath("routes.csv").read_text()
    assert catalog.parse_csv(committed) == rows, "run `tollgate dev stripe-routes` and commit routes.csv"


def test_every_route_has_a_pricing_and_a_scope_rule_and_every_refusal_a_reason() -> None:
    for r in endpoints.ROUTES:
        assert r.pricing in PRICINGS, r
        assert r.scope in SCOPES, r
        assert r.pricing != "unpriced" or len(r.reason) > 20, r


def test_every_route_matches_a_path_of_its_own_shape() -> None:
    for r in endpoints.ROUTES:
        ep = STRIPE.match(r.method, endpoints.example_path(r.template))
        assert (ep.template, ep.name) == (r.template, r.name), r


def test_a_route_no_rule_covers_stops_the_generator() -> None:
    with pytest.raises(catalog.Unclassified, match="no rule classifies"):
        catalog.classify("POST", "/v9/brand_new/{thing}", "brand_new.create", "api")


@pytest.mark.parametrize(
    ("method", "path", "pricing"),
    [
        ("POST", "/v1/charges", "charge"),
        ("POST", "/v1/charges/ch_1/capture", "charge_capture"),
        ("POST", "/v1/payment_intents", "pi_create"),
        ("POST", "/v1/payment_intents/pi_1/confirm", "pi_confirm"),
        ("POST", "/v1/payment_intents/pi_1/capture", "pi_capture"),
        ("POST", "/v1/refunds", "refund"),
        ("POST", "/v1/transfers", "amount"),
        ("POST", "/v1/payouts", "amount"),
        ("POST", "/v1/invoices/in_1/pay", "invoice_pay"),
        ("POST", "/v1/subscriptions/sub_1", "sub_update"),
        ("DELETE", "/v1/subscriptions/sub_1", "sub_cancel"),
        # money movers outside the old table
        ("POST", "/v1/charges/ch_1/refunds", "charge_refund"),
        ("POST", "/v1/charges/ch_1/refund", "charge_refund"),
        ("POST", "/v1/credit_notes", "credit_note"),
        ("POST", "/v1/customers/cus_1/balance_transactions", "signed_amount"),
        ("POST", "/v1/topups", "amount"),
        ("POST", "/v1/transfers/tr_1/reversals", "transfer_reversal"),
        ("POST", "/v1/application_fees/fee_1/refunds", "fee_refund"),
        ("POST", "/v1/application_fees/fee_1/refund", "fee_refund"),
        ("POST", "/v1/payouts/po_1/reverse", "object_amount"),
        ("POST", "/v1/treasury/outbound_payments", "amount"),
        ("POST", "/v1/treasury/outbound_transfers", "amount"),
        ("POST", "/v1/issuing/authorizations/iauth_1/approve", "unpriced"),
        ("POST", "/v2/money_management/outbound_payments", "unpriced"),
        ("POST", "/v1/quotes/qt_1/accept", "unpriced"),
        # nothing moves
        ("POST", "/v1/products", "free"),
        ("POST", "/v1/prices/price_1", "free"),
        ("POST", "/v1/tokens", "free"),
        ("POST", "/v1/files", "free"),
        ("POST", "/v1/setup_intents/seti_1/confirm", "free"),
        ("POST", "/v1/checkout/sessions", "free"),
        ("POST", "/v1/payouts/po_1", "free"),
        ("DELETE", "/v1/customers/cus_1/sources/src_1", "free"),
    ],
)
def test_money_moving_routes_are_priced_and_the_rest_are_free(method: str, path: str, pricing: str) -> None:
    assert STRIPE.match(method, path).pricing == pricing


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/no_such_things"), ("POST", "/v1/charges/ch_1/teleport"), ("PUT", "/v1/charges/ch_1")],
)
def test_paths_the_sdk_does_not_know_are_still_refused(method: str, path: str) -> None:
    ep = STRIPE.match(method, path)
    assert (ep.name, ep.pricing, ep.scope) == ("unknown.write", "unpriced", "unknown")


def test_unpriced_routes_say_why_and_what_makes_them_free() -> None:
    ep = STRIPE.match("POST", "/v1/subscriptions/sub_1/resume")
    assert ep.pricing == "sub_resume"
    ep = STRIPE.match("POST", "/v2/core/accounts")
    assert ep.pricing == "unpriced" and "JSON" in ep.reason


def test_files_are_served_by_their_own_host() -> None:
    route = endpoints.route("POST", "/v1/files")
    assert route is not None and route.api == "files"
    assert endpoints.route("GET", "/v1/files/file_1") is not None
    assert endpoints.route("GET", "/v1/files/file_1").api == "api"  # type: ignore[union-attr]


def test_the_readme_lists_the_rules_per_family_with_their_route_counts() -> None:
    readme = (Path(__file__).parents[4] / "README.md").read_text()
    rows = catalog.parse_csv(resources.files("tollgate.vendors.stripe").joinpath("routes.csv").read_text())
    assert catalog.summary(rows) in readme, "paste `tollgate dev stripe-routes --summary` into README.md"


def test_a_remembered_lookup_answers_only_its_own_path_and_its_ids_cannot_be_edited() -> None:
    # The table keeps its last answers: each path, in whatever order asked, gets its own ids.
    for first, second in (("ch_1", "ch_2"), ("ch_2", "ch_1"), ("ch_1", "ch_2")):
        one = endpoints.match("POST", f"/v1/charges/{first}/capture")
        other = endpoints.match("post", f"/v1/charges/{second}/capture")
        assert (dict(one.path_ids), dict(other.path_ids)) == ({"id": first}, {"id": second})
        assert one.name == other.name == "charges.capture"
    assert endpoints.match("GET", "/v1/charges/ch_1/capture").name == "unknown.read"
    with pytest.raises(TypeError):
        one.path_ids["id"] = "ch_other"  # type: ignore[index]
