"""`tollgate audit reconcile`: the rows of a day an auditor must look at.

- `amount_differs`: the vendor reported moving another amount (or currency) than Tollgate reserved;
- `settlement_unknown`: nothing proved the outcome, so the reservation stays counted;
- `not_in_audit` (with a read-only vendor key): an object the vendor has for the day that no row names,
  money that moved around the gateway or before the audit saw it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import httpx

from tollgate.audit.sql import AuditStore
from tollgate.vendors.stripe import listing

COLUMNS = [
    "finding", "at", "vendor", "vault_key_id", "method", "path", "vendor_object_id", "vendor_object",
    "amount_minor", "currency", "vendor_amount_minor", "vendor_currency", "cost_micro_usd",
    "settled_micro_usd", "settlement", "row_id",
]  # fmt: skip

_ROW_COLUMNS = ", ".join(c for c in COLUMNS if c != "finding")

AMOUNT_DIFFERS = (
    f"SELECT 'amount_differs' AS finding, {_ROW_COLUMNS} FROM tollgate_calls "
    "WHERE day = :day AND decision = 'allow' AND settlement = 'settled' AND vendor_amount_minor IS NOT NULL "
    "AND amount_minor IS NOT NULL AND (vendor_amount_minor <> amount_minor "
    "OR LOWER(COALESCE(currency, '')) <> COALESCE(vendor_currency, '')) ORDER BY at, row_id"
)
SETTLEMENT_UNKNOWN = (
    f"SELECT 'settlement_unknown' AS finding, {_ROW_COLUMNS} FROM tollgate_calls "
    "WHERE day = :day AND settlement = 'unknown' ORDER BY at, row_id"
)
# Every object id the audit names for the vendor, whatever the row's day (a call at 23:59:59 may create
# an object the vendor dates the next day).
NAMED = "SELECT DISTINCT vendor_object_id FROM tollgate_calls WHERE vendor = :vendor AND vendor_object_id IS NOT NULL"


def findings(store: AuditStore, day: date) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for sql in (AMOUNT_DIFFERS, SETTLEMENT_UNKNOWN):
        cols, data = store.query(sql, {"day": day})
        out += [dict(zip(cols, r, strict=True)) for r in data]
    return out


def unexplained(
    store: AuditStore, vendor_objects: Iterable[dict[str, Any]], vendor: str
) -> list[dict[str, Any]]:
    """The vendor's objects no audit row names."""
    _, data = store.query(NAMED, {"vendor": vendor})
    named = {r[0] for r in data}
    return [
        {c: None for c in COLUMNS} | obj | {"finding": "not_in_audit", "vendor": vendor}
        for obj in vendor_objects
        if obj["vendor_object_id"] not in named
    ]


def stripe_objects(
    api_base: str, read_key: str, day: date, *, by_created: bool = True, timeout_s: float = 10.0
) -> list[dict[str, Any]]:
    """Every money object Stripe has for `day`, read with a read-only (rk_…) or test key.
    `by_created=False` reads whole collections, for Stripe-compatible fakes without the `created` filter."""
    found: list[dict[str, Any]] = []
    with httpx.Client(
        base_url=api_base, headers={"authorization": f"Bearer {read_key}"}, timeout=timeout_s
    ) as c:
        for collection in listing.COLLECTIONS:
            after: str | None = None
            while True:
                r = c.get(listing.list_path(collection, day, after, by_created=by_created))
                if r.status_code == 404:  # a Stripe-compatible server without this collection
                    break
                r.raise_for_status()
                page = r.json()
                found += listing.objects(page, day)
                if (after := listing.next_after(page)) is None:
                    break
    return found


def as_rows(found: list[dict[str, Any]]) -> tuple[list[str], list[tuple[Any, ...]]]:
    return COLUMNS, [tuple(f.get(c) for c in COLUMNS) for f in found]
