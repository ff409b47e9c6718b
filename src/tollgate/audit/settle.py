"""Close the loop on reservations: the vendor's answer settles the reserved cost or gives it back."""

from __future__ import annotations

from collections.abc import Sequence

from tollgate.audit.record import AuditRow
from tollgate.store.base import Store

SETTLED = "settled"
RELEASED = "released"


def settlement_for(row: AuditRow) -> str | None:
    """What to do with the row's reservation, if it has one. Pure.

    A 2xx means the vendor did it: the reservation stands. Anything else (a 4xx or 5xx from the
    vendor, or no answer at all) means no money moved, so the cap gets the amount back.
    """
    if not row.reservation_id or not row.vault_key_id or not row.vendor or not row.spend_day:
        return None
    return SETTLED if row.vendor_succeeded else RELEASED


async def apply_settlements(store: Store, rows: Sequence[AuditRow]) -> dict[str, str]:
    """Settle or release each row's reservation (idempotent in Redis); returns row id → outcome."""
    done: dict[str, str] = {}
    for row in rows:
        outcome = settlement_for(row)
        if outcome is None:
            continue
        assert row.vault_key_id and row.vendor and row.spend_day and row.reservation_id
        if outcome == SETTLED:
            await store.settle(
                row.vault_key_id, row.vendor, row.spend_day, row.reservation_id, row.cost_micro_usd
            )
        else:
            await store.release(
                row.vault_key_id, row.vendor, row.spend_day, row.reservation_id, row.idempotency_key
            )
        done[row.row_id] = outcome
    return done
