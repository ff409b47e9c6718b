"""What the ledger counts for a key when Redis's copy is rebuilt: a reservation that was not released,
once per idempotency key, and the loop breaker's calls still in the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.builders import grant, spend_policy

from tollgate.audit.ledger import budget_copy, ledger_copy
from tollgate.audit.sql import LedgerEntry

NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
SINCE_MS = int(NOW.timestamp() * 1000)


def entry(
    cost: int, settlement: str, *, rid: str | None = "r", idem: str | None = None, **more: object
) -> LedgerEntry:
    fields: dict[str, object] = {
        "at": NOW - timedelta(seconds=5),
        "method": "POST",
        "path": "/v1/refunds",
        "vendor": "stripe",
        "spend_day": "20261201",
        "cost_micro_usd": cost,
        "reservation_id": rid,
        "idempotency_key": idem,
        "replay": None,
        "settlement": settlement,
        "shadow_rule": None,
        **more,
    }
    return LedgerEntry(**fields)  # type: ignore[arg-type]


def test_settled_and_unknown_count_and_released_does_not() -> None:
    rows = [entry(10, "settled"), entry(20, "unknown"), entry(40, "released")]
    assert ledger_copy("k", rows, None, SINCE_MS).spend == {("stripe", "20261201"): 30}


def test_a_retried_call_counts_once_and_only_if_some_attempt_is_not_proven_refused() -> None:
    kept = [entry(10, "released", idem="a"), entry(0, "unknown", rid=None, idem="a", replay=True)]
    refused = [entry(7, "released", idem="b"), entry(0, "released", rid=None, idem="b", replay=True)]
    again = [entry(5, "released", idem="c"), entry(5, "settled", idem="c")]  # counted anew after a release
    copy = ledger_copy("k", kept + refused + again, None, SINCE_MS)
    assert copy.spend == {("stripe", "20261201"): 15}


def test_each_day_is_its_own_counter() -> None:
    rows = [entry(10, "settled"), entry(3, "settled", spend_day="20261130")]
    assert ledger_copy("k", rows, None, SINCE_MS).spend == {
        ("stripe", "20261201"): 10,
        ("stripe", "20261130"): 3,
    }


def test_the_loop_breaker_gets_back_the_calls_still_in_its_window() -> None:
    g = grant(spend_policy(loopBreaker={"calls": 5, "per": "1m"}))
    rows = [
        entry(10, "released", rid="in"),  # a refused call still took its slot
        entry(10, "settled", rid="old", at=NOW - timedelta(minutes=2)),
        entry(0, "unknown", rid=None, idem="x", replay=True),  # a replay takes no slot
    ]
    copy = ledger_copy("k", rows, g, SINCE_MS)
    assert [m for m, _ in copy.calls] == ["in"] and copy.window_ms == 60_000


def test_a_settled_call_counts_what_the_vendor_moved_and_an_unknown_one_its_reservation() -> None:
    rows = [
        entry(10, "settled", settled_micro_usd=6),  # the vendor refunded less than reserved
        entry(20, "unknown", settled_micro_usd=20),
        entry(30, "settled", idem="a", settled_micro_usd=35),  # more: counted too
        entry(4, "settled"),  # written before schema 4: its reservation
    ]
    assert ledger_copy("k", rows, None, SINCE_MS).spend == {("stripe", "20261201"): 6 + 20 + 35 + 4}


def test_a_budget_counts_every_keys_calls_under_it_by_the_budgets_day_each_retry_once() -> None:
    rows = [
        ("support/a", entry(10, "settled", spend_day="20261201")),
        ("support/a", entry(20, "released", spend_day="20261201")),
        ("support/b", entry(40, "unknown", vendor="twilio", spend_day="20261201")),
        ("support/b", entry(5, "settled", vendor="resend", spend_day="20261130")),
        # One request retried under one idempotency key by one key: counted once.
        ("support/a", entry(7, "settled", idem="k1", spend_day="20261201")),
        ("support/a", entry(7, "settled", rid=None, idem="k1", replay=True, spend_day="20261201")),
        # The same idempotency key from another key is another request.
        ("support/c", entry(7, "settled", idem="k1", spend_day="20261201")),
    ]
    copy = budget_copy("support/team", rows, SINCE_MS)
    assert (copy.budget_id, copy.since_ms) == ("support/team", SINCE_MS)
    assert copy.spend == {"20261201": 10 + 40 + 7 + 7, "20261130": 5}
