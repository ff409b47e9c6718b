"""Prometheus metrics of the data plane. Label values are Rule codes, vendor names and policy ids, never
key ids or customers: rules and vendors are fixed sets, and policies and budgets are objects an operator
writes (a handful per team, each shared by many keys), so cardinality does not grow with agents or traffic while
spend per policy stays one query away. What a key has spent of its cap is a histogram per policy (the
share of the cap spent after each money call), which shows keys near their cap without naming them."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# Shares of a key's daily cap: the alert rules and the dashboard read the 0.8 and 1.0 buckets.
CAP_SHARE_BUCKETS = (0.25, 0.5, 0.8, 0.9, 0.95, 1.0)


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class _Spread:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bound ≥ value: `le` semantics
        self.sum += value


class Family(Collector):
    """A labelled counter or histogram of the Check path, exposed as prometheus_client's own would be
    (same names, samples and `le` labels; no `_created` series). prometheus_client's children take a lock
    and run some twenty Python calls per observation; these add to a float or a list slot. Only the event
    loop's thread writes; a scrape, from the metrics server's thread, copies what it reads, so a value is
    at worst one observation behind (the GIL keeps each add whole)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
        buckets: tuple[float, ...] | None = None,
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.buckets = buckets
        self._children: dict[tuple[str, ...], Any] = {}
        registry.register(self)

    def labels(self, *values: str) -> Any:
        """The child for these label values, made once: label values are bounded sets (see the module's
        docstring), so a child is kept for as long as the process runs."""
        if (child := self._children.get(values)) is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {values}")
            child = _Count() if self.buckets is None else _Spread(self.buckets)
            self._children = {**self._children, values: child}  # a new dict: a scrape may be iterating
        return child

    def collect(self) -> Iterator[Metric]:
        if self.buckets is None:
            counter = self._family()
            for values, child in self._children.items():
                counter.add_metric(values, child.value)
            yield counter
            return
        histogram = self._family()
        bounds = [*(floatToGoString(b) for b in self.buckets), "+Inf"]
        for values, child in self._children.items():
            counts, total = list(child.counts), child.sum
            cumulative, running = [], 0
            for bound, n in zip(bounds, counts, strict=True):
                running += n
                cumulative.append((bound, float(running)))
            histogram.add_metric(values, cumulative, total)
        yield histogram

    def describe(self) -> Iterator[Metric]:
        yield self._family()  # the registry refuses a second collector of the same names

    def _family(self) -> Any:
        kind = CounterMetricFamily if self.buckets is None else HistogramMetricFamily
        return kind(self.name, self.documentation, labels=self.labelnames)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.decisions = Family(
            "tollgate_decisions", "Check decisions by vendor, decision and rule.",
            ["vendor", "decision", "rule"], self.registry,
        )  # fmt: skip
        self.reserved = Family(
            "tollgate_reserved_micro_usd", "Spend reserved against daily caps, in micro-USD, by vendor and policy.",
            ["vendor", "policy"], self.registry,
        )  # fmt: skip
        self.cap_share = Family(
            "tollgate_cap_spent_ratio", "Share of its daily cap a key had spent after each money call, by policy.",
            ["vendor", "policy"], self.registry, CAP_SHARE_BUCKETS,
        )  # fmt: skip
        # A shared budget (SpendBudget) spans keys and vendors: labelled by budget alone ("namespace/name",
        # an object people write, a handful per team).
        self.budget_reserved = Family(
            "tollgate_budget_reserved_micro_usd", "Spend reserved against shared budgets, in micro-USD, by budget.",
            ["budget"], self.registry,
        )  # fmt: skip
        self.budget_share = Family(
            "tollgate_budget_spent_ratio", "Share of its daily cap a shared budget had spent after each money call under it.",
            ["budget"], self.registry, CAP_SHARE_BUCKETS,
        )  # fmt: skip
        self.ready = Gauge(
            "tollgate_ready", "1 while this ext_authz process reports SERVING (Redis answers its health ping).",
            registry=self.registry,
        )  # fmt: skip
        self.shadow_denials = Family(
            "tollgate_shadow_denials", "Calls a shadow-mode policy let through that enforcement would deny.",
            ["vendor", "rule"], self.registry,
        )  # fmt: skip
        self.replays = Family(
            "tollgate_replays", "Retries under an idempotency key already counted: allowed, nothing reserved.",
            ["vendor"], self.registry,
        )  # fmt: skip
        self.approvals = Family(
            "tollgate_approvals",
            "Approvals (spec.approval) as calls met them, by vendor and state: pending (created), used (its "
            "call passed), and refusals: rejected, expired, already_used.",
            ["vendor", "state"], self.registry,
        )  # fmt: skip
        self.check_seconds = Family(
            "tollgate_check_duration_seconds", "Time to answer one Check, by vendor.", ["vendor"], self.registry,
            (0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
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

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        """Expose /metrics on its own port (a thread), separate from the gRPC port."""
        start_http_server(port, addr=host, registry=self.registry)
