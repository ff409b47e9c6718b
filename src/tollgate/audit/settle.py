"""Close the loop on reservations by evidence: the row's settlement (the vendor's rule on what Envoy
saw, tollgate.audit.record) decides whether a reserved cost stays counted or goes back.

Only `released` gives money back: the vendor answered "not processed", or Envoy proves the request never
left. `settled` and `unknown` both keep the cost counted (an unknown outcome is never "nothing
happened"); the reservation is closed either way, so settling a row twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from tollgate.audit.record import AuditRow
from tollgate.store.base import BudgetCharge, Closing, SettleStore
from tollgate.vendors.base import Settlement

SETTLED = Settlement.SETTLED.value
RELEASED = Settlement.RELEASED.value
UNKNOWN = Settlement.UNKNOWN.value


def _counted(row: AuditRow) -> int:
    """Settle to the truth: what the vendor says it moved where it said (a refund of what was left, a
    capture of less than authorised), else the reservation (tollgate.audit.record.settled_cost)."""
    if row.settlement == SETTLED and row.settled_micro_usd is not None:
        return row.settled_micro_usd
    return row.cost_micro_usd


def settlement_for(row: AuditRow) -> str | None:
    """What to do with the row's reservation, if it holds one. Pure."""
    return row.settlement if row.reserved else None


async def apply_settlements(store: SettleStore, rows: Sequence[AuditRow]) -> dict[str, str]:
    """Settle or release each row's reservation (idempotent in Redis, pipelined); returns row id → outcome."""
    done: dict[str, str] = {}
    closings: list[Closing] = []
    for row in rows:
        outcome = settlement_for(row)
        if outcome is None:
            continue
        assert row.vault_key_id and row.vendor and row.spend_day and row.reservation_id
        # A call under a shared budget: its counters sit in the budget's slot, and the budget's moves too.
        budget = BudgetCharge(row.budget_id, row.budget_day) if row.budget_id and row.budget_day else None
        closings.append(
            Closing(
                row.vault_key_id,
                row.vendor,
                row.spend_day,
                row.reservation_id,
                release=outcome == RELEASED,
                actual_micro_usd=_counted(row),
                at_ms=int(row.at.timestamp() * 1000),
                idempotency_key=row.idempotency_key,
                budget=budget,
            )
        )
        done[row.row_id] = outcome
    if closings:
        await store.close_reservations(closings)
    return done
