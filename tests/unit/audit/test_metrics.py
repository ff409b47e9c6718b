"""The audit's metrics split reserved spend three ways, as settlement does: settled, released, unknown."""

from __future__ import annotations

from dataclasses import replace

from tests.unit.audit.test_record import line

from tollgate.audit.metrics import AuditMetrics
from tollgate.audit.record import from_line
from tollgate.store.base import ApprovalEvent


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


def test_approval_decisions_are_counted_by_state() -> None:
    m = AuditMetrics()
    event = ApprovalEvent("1-0", "apr-1", "agents/bot", "agents/p", "approved", "alice", 0, 1)
    m.observe_approvals(
        [event, replace(event, event_id="2-0", state="rejected"), replace(event, event_id="3-0")]
    )
    counted = {
        s: m.registry.get_sample_value("tollgate_approval_decisions_total", {"state": s})
        for s in ("approved", "rejected")
    }
    assert counted == {"approved": 2, "rejected": 1}


def test_a_batch_is_summed_per_label_set_and_batches_add_up() -> None:
    m = AuditMetrics()
    settled = [from_line(line(request_id=f"s{i}"), f"f@{i}") for i in range(3)]
    refused = from_line(line(request_id="r", response_code=402), "f@9")
    m.observe([*settled, refused])
    m.observe(settled[:1])
    get = m.registry.get_sample_value
    assert get("tollgate_settled_micro_usd_total", {"vendor": "stripe"}) == 4 * 15_000_000
    assert get("tollgate_released_micro_usd_total", {"vendor": "stripe"}) == 15_000_000
    assert get("tollgate_unknown_micro_usd_total", {"vendor": "stripe"}) is None
    rows = {"vendor": "stripe", "decision": "allow", "rule": "tollgate_allowed"}
    assert get("tollgate_audit_rows_total", rows) == 5
