"""The Stripe objects that move money, as its list endpoints name them, for reconciling a day of the audit
against Stripe (tollgate.audit.reconcile). Pure: the caller does the reads, with a read-only key."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tollgate.vendors.stripe.observed import observed

# The collections whose objects an allowed money call creates or changes (charges captured, refunds,
# payouts, transfers, payment intents confirmed). A read-only key needs read on each.
COLLECTIONS = ("charges", "refunds", "payment_intents", "payouts", "transfers")
PAGE = 100


def list_path(
    collection: str, day: date, starting_after: str | None = None, *, by_created: bool = True
) -> str:
    """`by_created=False` for a Stripe-compatible server that refuses the `created` filter (localstripe):
    the whole collection is read and filtered by `objects`."""
    start = int(datetime.combine(day, time(0), UTC).timestamp())
    end = int((datetime.combine(day, time(0), UTC) + timedelta(days=1)).timestamp())
    path = f"/v1/{collection}?limit={PAGE}"
    if by_created:
        path += f"&created[gte]={start}&created[lt]={end}"
    return path + (f"&starting_after={starting_after}" if starting_after else "")


def objects(page: Mapping[str, Any], day: date) -> Iterator[dict[str, Any]]:
    """The page's objects created on `day` (a server that ignores the filter is filtered here too), each as
    the audit's own fields: vendor_object_id, vendor_object, vendor_amount_minor, vendor_currency, at."""
    for obj in page.get("data") or []:
        if not isinstance(obj, dict) or not isinstance(obj.get("created"), int):
            continue
        at = datetime.fromtimestamp(obj["created"], UTC)
        if at.date() != day:
            continue
        seen = observed({k: _text(v) for k, v in obj.items()})
        yield {
            "at": at,
            "vendor_object_id": seen.object_id,
            "vendor_object": seen.object_type,
            "vendor_amount_minor": seen.amount_minor,
            "vendor_currency": seen.currency,
            "vendor_state": seen.state,
        }


def next_after(page: Mapping[str, Any]) -> str | None:
    data = page.get("data") or []
    return str(data[-1]["id"]) if page.get("has_more") and data and isinstance(data[-1], dict) else None


def _text(v: object) -> object:
    # The fields as Envoy's capture writes them: scalars as text (booleans lower-case, as JSON spells them).
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v) if isinstance(v, int | str) else v
