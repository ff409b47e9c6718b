"""What a Stripe answer says moved. Pure.

The amount that moved is not always `amount`: a charge's `amount` is what was authorised and
`amount_captured` what was taken (a partial capture takes less; API versions before it, and localstripe,
say `captured` and count the uncaptured rest as refunded), a payment intent's is `amount_received`.
A refund, transfer or payout moved its `amount`. Other objects report no amount."""

from __future__ import annotations

from collections.abc import Mapping

from tollgate.vendors.observed import Observed, integer, text

# What Envoy keeps of an answer for `observed` below: the object, its amounts, currency and status.
CAPTURED = frozenset(
    {
        "id", "object", "amount", "amount_captured", "amount_received", "amount_paid", "amount_refunded",
        "captured", "currency", "status",
    }
)  # fmt: skip
_AMOUNT_FIELD = {
    "charge": "amount_captured",
    "payment_intent": "amount_received",
    "refund": "amount",
    "transfer": "amount",
    "payout": "amount",
    "invoice": "amount_paid",
}


def observed(fields: Mapping[str, object]) -> Observed:
    kind = text(fields, "object")
    amount_field = _AMOUNT_FIELD.get(kind or "")
    currency = text(fields, "currency")
    amount = integer(text(fields, amount_field)) if amount_field else None
    if kind == "charge" and amount is None and text(fields, "captured") == "true":
        whole, refunded = integer(text(fields, "amount")), integer(text(fields, "amount_refunded") or "0")
        amount = whole - refunded if whole is not None and refunded is not None else None
    return Observed(
        object_id=text(fields, "id"),
        object_type=kind,
        amount_minor=amount,
        currency=currency.lower() if currency else None,
        state=text(fields, "status"),
    )
