"""Prometheus metrics of the audit pipeline: what was settled and released, and how far behind it is.

Reserved spend is counted where it happens (ext_authz); settled and released spend only exist here,
once the vendor's answer is known.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from tollgate.audit.record import AuditRow
from tollgate.audit.settle import RELEASED, SETTLED, UNKNOWN, settlement_for
from tollgate.store.base import ApprovalEvent


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.rows = Counter(
            "tollgate_audit_rows", "Calls written to the audit store.", ["vendor", "decision", "rule"],
            registry=self.registry,
        )  # fmt: skip
        self.settled = Counter(
            "tollgate_settled_micro_usd", "Reserved spend the vendor confirmed (2xx), in micro-USD.", ["vendor"],
            registry=self.registry,
        )  # fmt: skip
        self.released = Counter(
            "tollgate_released_micro_usd", "Reserved spend given back: the vendor refused it or it never left.",
            ["vendor"], registry=self.registry,
        )  # fmt: skip
        self.unknown = Counter(
            "tollgate_unknown_micro_usd", "Reserved spend kept because the outcome is unknown (no proof either way).",
            ["vendor"], registry=self.registry,
        )  # fmt: skip
        self.approval_decisions = Counter(
            "tollgate_approval_decisions", "Approvals decided (approved, rejected) or expired, as the audit copied them.",
            ["state"], registry=self.registry,
        )  # fmt: skip
        self.last_row_time = Gauge(
            "tollgate_audit_last_row_timestamp_seconds", "Time of the newest call written; lag = now - this.",
            registry=self.registry,
        )  # fmt: skip
        self._by_outcome = {SETTLED: self.settled, RELEASED: self.released, UNKNOWN: self.unknown}

    def observe(self, rows: Sequence[AuditRow]) -> None:
        # Summed per label set first: one labels() and inc() per set and batch, not per row.
        calls: collections.Counter[tuple[str, str, str]] = collections.Counter()
        money: dict[tuple[Counter, str], int] = {}
        for row in rows:
            vendor = row.vendor or "-"
            calls[vendor, row.decision, row.rule] += 1
            outcome = settlement_for(row)
            family = self._by_outcome.get(outcome) if outcome is not None else None
            if family is not None:
                money[family, vendor] = money.get((family, vendor), 0) + row.cost_micro_usd
        for labels, n in calls.items():
            self.rows.labels(*labels).inc(n)
        for (family, vendor), amount in money.items():
            family.labels(vendor).inc(amount)
        if rows:
            self.last_row_time.set(max(r.at for r in rows).timestamp())

    def observe_approvals(self, events: Sequence[ApprovalEvent]) -> None:
        for e in events:
            self.approval_decisions.labels(e.state).inc()

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        start_http_server(port, addr=host, registry=self.registry)
