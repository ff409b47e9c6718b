"""Reading a day of Stripe's money objects for reconciliation: the day's window, paging, and each object
in the audit's own terms."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tollgate.vendors.stripe.listing import list_path, next_after, objects

DAY = date(2026, 12, 1)
NOON = int(datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp())


def test_the_list_asks_for_the_utc_day_and_pages_after_the_last_object() -> None:
    assert list_path("refunds", DAY, "re_9") == (
        "/v1/refunds?limit=100&created[gte]=1796083200&created[lt]=1796169600&starting_after=re_9"
    )
    assert list_path("refunds", DAY, by_created=False) == "/v1/refunds?limit=100"
    assert next_after({"has_more": True, "data": [{"id": "re_1"}, {"id": "re_2"}]}) == "re_2"
    assert next_after({"has_more": False, "data": [{"id": "re_1"}]}) is None


def test_only_the_days_objects_are_kept_in_the_audits_terms() -> None:
    page = {
        "data": [
            {"id": "re_1", "object": "refund", "amount": 700, "currency": "usd", "created": NOON},
            {"id": "re_0", "object": "refund", "amount": 5, "currency": "usd", "created": NOON - 86_400},
            {"id": "ch_1", "object": "charge", "amount": 900, "amount_captured": 900, "captured": True,
             "currency": "eur", "created": NOON},
        ]
    }  # fmt: skip
    got = [
        (o["vendor_object_id"], o["vendor_amount_minor"], o["vendor_currency"]) for o in objects(page, DAY)
    ]
    assert got == [("re_1", 700, "usd"), ("ch_1", 900, "eur")]
