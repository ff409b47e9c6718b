"""Class 6b: a line end after a value or a name. Python's `$` also matches just before a final "\\n", so a
grammar written `^…$` and checked with `match` would take `100\\n` as the amount 100, `ana@example.com\\n` as
a currency, or `amount\\n` as a name: what the vendor makes of the extra byte is not something to
bet money on. Every grammar is matched whole; such requests are refused and nothing reaches the vendor."""

from __future__ import annotations

import pytest
from tests.security.conftest import FORM, World, refused


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"charge=ch_mine&amount=100%0A", id="an amount with an escaped line end"),
        pytest.param(b"charge=ch_mine&amount=100\n", id="a raw line end ending the body"),
        pytest.param(b"charge=ch_mine&amount%0A=100", id="a name with a line end"),
        pytest.param(b"charge=ch_mine%0A&amount=100", id="an object id with a line end"),
    ],
)
def test_stripe_values_and_names_ending_in_a_line_end_are_refused(world: World, body: bytes) -> None:
    r = world.stripe("POST", "/v1/refunds", body, FORM)
    refused(r, 400, "tollgate_request_invalid", world)
    assert world.spent("stripe") == 0


@pytest.mark.parametrize("currency", [b"usd%0A", b"usd\n"])
def test_a_charge_whose_currency_ends_in_a_line_end_is_refused(world: World, currency: bytes) -> None:
    r = world.stripe("POST", "/v1/charges", b"amount=100&customer=cus_mine&currency=" + currency, FORM)
    refused(r, 400, "tollgate_request_invalid", world)
    assert world.spent("stripe") == 0


def test_the_same_refund_without_the_line_end_passes(world: World) -> None:
    r = world.stripe("POST", "/v1/refunds", b"charge=ch_mine&amount=100", FORM)
    assert r.status == 200, r.body
    assert world.upstreams.stripe.requests[-1].body == b"charge=ch_mine&amount=100"


def test_a_twilio_recipient_ending_in_a_line_end_is_refused(world: World) -> None:
    r = world.twilio(b"To=%2B14155550100%0A&From=%2B14155550199&Body=hi", FORM)
    assert r.status in (400, 403), r.body
    assert r.headers.get("x-tollgate-rule") in ("tollgate_request_invalid", "tollgate_recipient_out_of_scope")
    assert world.upstreams.all() == []
    assert world.spent("twilio") == 0
