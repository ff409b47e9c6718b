"""What each vendor's answer says it did, from the fields Envoy read out of it."""

from __future__ import annotations

from tollgate.vendors import VENDORS
from tollgate.vendors.observed import Observed


def test_stripe_reads_the_amount_that_moved_for_each_object() -> None:
    see = VENDORS["stripe"].observed
    assert see({"id": "pi_1", "object": "payment_intent", "amount": "900", "amount_received": "0",
                "currency": "USD", "status": "requires_capture"}) == Observed(
        "pi_1", "payment_intent", 0, "usd", "requires_capture"
    )  # fmt: skip
    assert see({"id": "cus_1", "object": "customer", "amount": "5"}).amount_minor is None
    # a charge without amount_captured (older API versions): captured, less what was given back
    old = {"id": "ch_1", "object": "charge", "amount": "900", "captured": "true", "amount_refunded": "100"}
    assert see(old).amount_minor == 800
    assert see({**old, "captured": "false"}).amount_minor is None


def test_twilio_keeps_a_price_only_when_it_is_whole_cents() -> None:
    see = VENDORS["twilio"].observed
    assert see({"sid": "SM1", "status": "sent", "price": "-0.02000", "price_unit": "USD"}) == Observed(
        "SM1", "message", 2, "usd", "sent"
    )
    assert see({"sid": "SM1", "price": "-0.00790", "price_unit": "USD"}).amount_minor is None
    assert see({"sid": "CA1", "status": "queued"}).object_type == "call"


def test_resend_names_the_email() -> None:
    assert VENDORS["resend"].observed({"id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c"}).object_type == "email"
