"""What a Twilio answer says it did. Pure.

A message or call is named by its `sid` (`SM…`, `CA…`). Twilio reports `price` (negative: what it
charged, in dollars with up to five decimals, `price_unit` the currency) only once the message is priced,
usually after the create call answered; a price that is not a whole number of cents is kept out of
`amount_minor` rather than rounded."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from tollgate.vendors.observed import Observed, text

# What Envoy keeps of an answer for `observed` below.
CAPTURED = frozenset({"sid", "status", "price", "price_unit"})
_KIND = {"SM": "message", "MM": "message", "CA": "call"}


def observed(fields: Mapping[str, object]) -> Observed:
    sid = text(fields, "sid")
    unit = text(fields, "price_unit")
    return Observed(
        object_id=sid,
        object_type=_KIND.get((sid or "")[:2]),
        amount_minor=_cents(text(fields, "price")),
        currency=unit.lower() if unit else None,
        state=text(fields, "status"),
    )


def _cents(price: str | None) -> int | None:
    if price is None:
        return None
    try:
        cents = abs(Decimal(price)) * 100
    except InvalidOperation:
        return None
    return int(cents) if cents == cents.to_integral_value() else None
