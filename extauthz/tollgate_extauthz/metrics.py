"""Prometheus metrics of the data plane. Label values are Rule codes and vendor names (bounded sets),
never key ids or customers, so cardinality stays fixed however many agents there are."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.decisions = Counter(
            "tollgate_decisions", "Check decisions by vendor, decision and rule.",
            ["vendor", "decision", "rule"], registry=self.registry,
        )  # fmt: skip
        self.reserved = Counter(
            "tollgate_reserved_micro_usd", "Spend reserved against daily caps, in micro-USD.",
            ["vendor"], registry=self.registry,
        )  # fmt: skip
        self.shadow_denials = Counter(
            "tollgate_shadow_denials", "Calls a shadow-mode policy let through that enforcement would deny.",
            ["vendor", "rule"], registry=self.registry,
        )  # fmt: skip
        self.replays = Counter(
            "tollgate_replays", "Retries under an idempotency key already counted: allowed, nothing reserved.",
            ["vendor"], registry=self.registry,
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

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        """Expose /metrics on its own port (a thread), separate from the gRPC port."""
        start_http_server(port, addr=host, registry=self.registry)
