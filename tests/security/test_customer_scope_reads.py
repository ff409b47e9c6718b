"""Class 5: under a customer scope, a read either provably touches only in-scope customers or is
refused. Lists that cannot be filtered by customer, searches, and `expand` that could leave the
customer's own objects are out of scope; nothing reaches the vendor for them."""

from __future__ import annotations

import pytest
from tests.security.conftest import World, refused


@pytest.mark.parametrize(
    "target",
    [
        "/v1/balance_transactions?expand[]=data.source",
        "/v1/balance_transactions?expand%5B%5D=data.source",
        "/v1/balance_transactions?expand[0]=data.source",
        "/v1/balance_transactions",
        "/v1/transfers",
        "/v1/charges/search?query=amount%3E0",
        "/v1/customers/search?query=email%3A%27a%40x.com%27",
        "/v1/charges",
        "/v1/charges?customer=cus_other",
        "/v1/charges?customer=cus_mine&expand[]=data.transfer",
        "/v1/charges?customer=cus_mine&expand[]=data.customer&expand[]=data.on_behalf_of",
        "/v1/balance?expand[]=instant_available",
        "/v1/payouts/po_1?expand[]=balance_transaction.source",
        "/v1/customers/cus_other",
        "/v1/customers/cus_mine/../cus_other",
    ],
)
def test_reads_that_can_reach_other_customers_are_refused(world: World, target: str) -> None:
    r = world.stripe("GET", target)
    refused(r, 403, "tollgate_customer_out_of_scope", world)


def test_a_charge_of_another_customer_is_read_by_the_gateway_only(world: World) -> None:
    r = world.stripe("GET", "/v1/charges/ch_other?expand[]=customer")
    assert (r.status, r.headers["x-tollgate-rule"]) == (403, "tollgate_customer_out_of_scope")
    # The gateway's own lookup (with the real key, no expand) is all that reached Stripe.
    assert [(q.method, q.path) for q in world.upstreams.stripe.requests] == [("GET", "/v1/charges/ch_other")]


@pytest.mark.parametrize(
    "target",
    [
        "/v1/charges?customer=cus_mine&expand[]=data.customer",
        "/v1/charges?customer=cus_mine&expand[]=data.invoice.subscription",
        "/v1/charges/ch_mine?expand[]=customer&expand[]=balance_transaction",
        "/v1/customers/cus_mine?expand[]=default_source",
    ],
)
def test_expanding_the_customers_own_objects_passes_as_sent(world: World, target: str) -> None:
    r = world.stripe("GET", target)
    assert r.status == 200, r.body
    assert world.upstreams.stripe.requests[-1].path == target
