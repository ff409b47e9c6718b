"""Prometheus metrics of the data plane. Label values are Rule codes, vendor names and policy ids, never
key ids or customers: rules and vendors are fixed sets, and policies and budgets are objects an operator
writes (a handful per team, each shared by many keys), so cardinality does not grow with agents or traffic while
spend per policy stays one query away. What a key has spent of its cap is a histogram per policy (the
share of the cap spent after each money call), which shows keys near their cap without naming them."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics import MetricWrapperBase

# Shares of a key's daily cap: the alert rules and the dashboard read the 0.8 and 1.0 buckets.
CAP_SHARE_BUCKETS = (0.25, 0.5, 0.8, 0.9, 0.95, 1.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.decisions = Counter(
            "tollgate_decisions", "Check decisions by vendor, decision and rule.",
            ["vendor", "decision", "rule"], registry=self.registry,
        )  # fmt: skip
        self.reserved = Counter(
            "tollgate_reserved_micro_usd", "Spend reserved against daily caps, in micro-USD, by vendor and policy.",
            ["vendor", "policy"], registry=self.registry,
        )  # fmt: skip
        self.cap_share = Histogram(
            "tollgate_cap_spent_ratio", "Share of its daily cap a key had spent after each money call, by policy.",
            ["vendor", "policy"], buckets=CAP_SHARE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        # A shared budget (SpendBudget) spans keys and vendors: labelled by budget alone ("namespace/name",
        # an object people write, a handful per team).
        self.budget_reserved = Counter(
            "tollgate_budget_reserved_micro_usd", "Spend reserved against shared budgets, in micro-USD, by budget.",
            ["budget"], registry=self.registry,
        )  # fmt: skip
        self.budget_share = Histogram(
            "tollgate_budget_spent_ratio", "Share of its daily cap a shared budget had spent after each money call under it.",
            ["budget"], buckets=CAP_SHARE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.ready = Gauge(
            "tollgate_ready", "1 while this ext_authz process reports SERVING (Redis answers its health ping).",
            registry=self.registry,
        )  # fmt: skip
        self.shadow_denials = Counter(
            "tollgate_shadow_denials", "Calls a shadow-mode policy let through that enforcement would deny.",
            ["vendor", "rule"], registry=self.registry,
        )  # fmt: skip
        self.replays = Counter(
            "tollgate_replays", "Retries under an idempotency key already counted: allowed, nothing reserved.",
            ["vendor"], registry=self.registry,
        )  # fmt: skip
        self.approvals = Counter(
            "tollgate_approvals",
            "Approvals (spec.approval) as calls met them, by vendor and state: pending (created), used (its "
            "call passed), and refusals: rejected, expired, already_used.",
            ["vendor", "state"], registry=self.registry,
        )  # fmt: skip
        self.check_seconds = Histogram(
            "tollgate_check_duration_seconds", "Time to answer one Check, by vendor.", ["vendor"],
            buckets=(0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )  # fmt: skip
        self.store_errors = Counter(
            "tollgate_store_errors", "Checks denied because Redis could not be reached or answered an error.",
            registry=self.registry,
        )  # fmt: skip
        self.internal_errors = Counter(
            "tollgate_internal_errors",
            "Checks denied because of an unexpected error.",
            registry=self.registry,
        )
        self._children: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}

    def child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """`metric.labels(*labels)`, kept: labels() validates and takes a lock on every call, while a
        child, once made, lives as long as its metric (label values are bounded sets, see above)."""
        key = (metric, labels)
        if (c := self._children.get(key)) is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        """Expose /metrics on its own port (a thread), separate from the gRPC port."""
        start_http_server(port, addr=host, registry=self.registry)
