"""The audit's metrics split reserved spend three ways, as settlement does: settled, released, unknown."""

from __future__ import annotations

from tests.unit.audit.test_record import line

from tollgate.audit.metrics import AuditMetrics
from tollgate.audit.record import from_line


def test_reserved_spend_is_counted_as_settled_released_or_unknown() -> None:
    m = AuditMetrics()
    m.observe(
        [
            from_line(line(request_id="a"), "f@0"),  # Stripe 200
            from_line(line(request_id="b", response_code=402), "f@1"),  # Stripe's own "not processed"
            from_line(line(request_id="c", response_code=500), "f@2"),  # undetermined
        ]
    )

    def value(name: str) -> float | None:
        return m.registry.get_sample_value(f"{name}_total", {"vendor": "stripe"})

    assert value("tollgate_settled_micro_usd") == 15_000_000
    assert value("tollgate_released_micro_usd") == 15_000_000
    assert value("tollgate_unknown_micro_usd") == 15_000_000
