"""The audit store is the ledger; Redis is its fast copy. This module rebuilds the copy.

When a key has no ledger marker in Redis (a new key, or Redis lost its data: a new empty Redis, a
FLUSHALL; after a restart or a failover, another run id, the ingester drops the markers itself),
ext_authz refuses its money calls (503 tollgate_unavailable) and reads pass. The ingester then:
1. notes the time T, and writes every line of the access log it has not yet written into the audit
   store (so every call Envoy logged is in the ledger);
2. sums the key's counted spend per day from the ledger (`counted`: a reservation that was not
   released, i.e. settled or unknown; a call retried under one idempotency key counts once, and is
   counted when any attempt of it is not proven refused) and its loop-breaker calls still in window;
3. writes them and the marker (value T) in one atomic step (store/lua/rebuild.lua), only if no other
   ingester did first.
A shared budget (SpendBudget) has its own marker and is rebuilt the same way from the rows that name it
(their budget_day), before any money call under it passes; a key under a budget needs both marks.
Calls reserved before the loss but logged after step 1 (still in flight at the vendor) are covered by
the marker: settling a counted call made before T whose reservation this Redis never saw counts it
then, once (store/lua/settle.lua). Idempotency keys are not rebuilt (the audit does not keep the
request's fingerprint), so a retry after a loss is counted again: over, never under.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from tollgate.audit.sql import LedgerEntry
from tollgate.policy.grant import Grant
from tollgate.store.base import BudgetLedgerCopy, LedgerCopy
from tollgate.vendors.base import Settlement

log = logging.getLogger("tollgate.audit")
LOOKBACK_DAYS = 2  # Redis keeps spend counters two days (store/redis.py DAY_TTL_S)
RELEASED = Settlement.RELEASED.value
SETTLED = Settlement.SETTLED.value


def ledger_copy(
    key_id: str, entries: Iterable[LedgerEntry], grant: Grant | None, since_ms: int
) -> LedgerCopy:
    """What Redis must hold for `key_id`, from its ledger entries. Pure."""
    spend: dict[tuple[str, str], int] = {}
    groups: dict[
        tuple[str, str], tuple[int, str, bool]
    ] = {}  # (vendor, idempotency key) → cost, day, counted
    lb = grant.loop_breaker if grant else None
    calls: list[tuple[str, int]] = []
    for e in entries:
        if e.vendor is None or (e.spend_day is None and not e.replay):
            continue
        at_ms = int(_utc(e.at).timestamp() * 1000)
        counted = e.settlement != RELEASED
        # A settled call counts what the vendor says it moved, where it said (tollgate.audit.record).
        amount = (
            e.settled_micro_usd
            if e.settlement == SETTLED and e.settled_micro_usd is not None
            else e.cost_micro_usd
        )
        if e.idempotency_key:
            # Every attempt under one key is one vendor request: count its reserved cost once, unless
            # every attempt (the reserved one and its replays) is proven refused.
            g = (e.vendor, e.idempotency_key)
            cost, day, seen = groups.get(g, (0, "", False))
            if e.reservation_id and e.spend_day and amount >= cost:
                cost, day = amount, e.spend_day
            groups[g] = (cost, day, seen or counted)
        elif e.reservation_id and counted and e.spend_day:
            spend[(e.vendor, e.spend_day)] = spend.get((e.vendor, e.spend_day), 0) + amount
        if (
            lb is not None
            and not e.replay
            and e.shadow_rule is None
            and since_ms - at_ms < lb.window_ms
            and lb.counts(e.method or "", e.path or "", e.cost_micro_usd)
        ):
            calls.append((e.reservation_id or f"ledger:{at_ms}:{len(calls)}", at_ms))
    for (vendor, _), (cost, day, counted) in groups.items():
        if counted and cost and day:
            spend[(vendor, day)] = spend.get((vendor, day), 0) + cost
    return LedgerCopy(key_id, since_ms, spend, calls, lb.window_ms if lb and calls else 0)


def budget_copy(budget_id: str, rows: Iterable[tuple[str, LedgerEntry]], since_ms: int) -> BudgetLedgerCopy:
    """What Redis must hold for a shared budget: every key's counted calls under it, by the budget's day
    (the entries' spend_day is the budget's, see AuditStore.counted_budget_calls), each key counted as
    ledger_copy counts it (a retry under one idempotency key once). Pure."""
    by_key: dict[str, list[LedgerEntry]] = {}
    for key_id, entry in rows:
        by_key.setdefault(key_id, []).append(entry)
    spend: dict[str, int] = {}
    for key_id, entries in by_key.items():
        for (_vendor, day), amount in ledger_copy(key_id, entries, None, since_ms).spend.items():
            spend[day] = spend.get(day, 0) + amount
    return BudgetLedgerCopy(budget_id, since_ms, spend)


def lookback(now: datetime) -> datetime:
    return now - timedelta(days=LOOKBACK_DAYS)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite hands back naive UTC times
