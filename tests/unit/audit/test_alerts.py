"""Which audit rows raise which alerts, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.unit.audit.test_record import ALLOWED, line

from tollgate.audit.alerts import AlertRules
from tollgate.audit.record import AuditRow, from_line
from tollgate.settings import AlertSettings

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def row(at: datetime = T0, **authz: object) -> AuditRow:
    return from_line(
        line(start_time=at.isoformat(), request_id=None, authz={**ALLOWED["authz"], **authz}), at.isoformat()
    )  # type: ignore[dict-item]


def rules(**overrides: object) -> AlertRules:
    return AlertRules(AlertSettings.model_validate(overrides))


def test_spending_past_the_warning_share_of_the_cap_warns_once_a_day() -> None:
    r = rules(cap_warn_percent=80)
    assert r.evaluate([row(spent_micro_usd="79000000", cap_micro_usd="100000000")]) == []
    (alert,) = r.evaluate([row(spent_micro_usd="80000000", cap_micro_usd="100000000")])
    assert alert.kind == "cap_warning" and alert.dedup == "warn80:agents/bot:2026-11-25"
    assert "$80.00 of its $100.00" in alert.text


def test_reaching_the_cap_alerts() -> None:
    (alert,) = rules().evaluate(
        [
            row(
                decision="deny",
                rule="tollgate_cap_exceeded",
                spent_micro_usd="99000000",
                cap_micro_usd="100000000",
            )
        ]
    )
    assert alert.kind == "cap_reached" and "reached its daily cap" in alert.text


def test_a_revoked_or_expired_key_still_calling_alerts() -> None:
    for rule in ("tollgate_key_revoked", "tollgate_key_expired"):
        (alert,) = rules().evaluate([row(decision="deny", rule=rule)])
        assert alert.kind == "dead_key_calling" and alert.key_id == "agents/bot"


def test_a_burst_of_denials_from_one_key_alerts_but_a_slow_trickle_does_not() -> None:
    burst = rules(denial_burst=5, denial_burst_window_s=60)
    denials = [
        row(T0 + timedelta(seconds=i), decision="deny", rule="tollgate_endpoint_not_allowed")
        for i in range(5)
    ]
    alerts = burst.evaluate(denials)
    assert [a.kind for a in alerts] == ["denial_burst"]
    trickle = rules(denial_burst=5, denial_burst_window_s=60)
    slow = [
        row(T0 + timedelta(seconds=30 * i), decision="deny", rule="tollgate_endpoint_not_allowed")
        for i in range(5)
    ]
    assert trickle.evaluate(slow) == []


def test_rows_without_a_key_raise_nothing() -> None:
    assert rules().evaluate([from_line('{"authz": null, "response_code": 404}', "f@1")]) == []


def test_a_call_whose_outcome_is_unknown_alerts_once_naming_what_envoy_saw() -> None:
    entry = line(
        request_id="req-unknown",
        response_code=0,
        response_code_details="downstream_remote_disconnect",
        response_flags="DC",
    )
    unknown = from_line(entry, "f@0")
    assert unknown.settlement == "unknown"
    (alert,) = rules().evaluate([unknown])
    assert alert.kind == "settlement_unknown" and alert.dedup == "unknown:req-unknown"
    assert "downstream_remote_disconnect" in alert.text and "$15.00" in alert.text and "idem-1" in alert.text
    assert rules().evaluate([from_line(line(request_id="req-ok"), "f@1")]) == []  # a 2xx is no news


def test_a_vendor_moving_more_than_was_reserved_alerts_once() -> None:
    seen = {"id": "re_9", "object": "refund", "amount": "2000", "currency": "usd", "status": "succeeded"}
    more = from_line(line(vendor_response=seen), "f@0")
    [alert] = [a for a in rules().evaluate([more, more]) if a.kind == "vendor_moved_more"][:1]
    assert "re_9" in alert.text and "$20.00" in alert.text and "$15.00" in alert.text
    same = from_line(line(vendor_response={**seen, "amount": "1500"}), "f@0")
    assert not [a for a in rules().evaluate([same]) if a.kind == "vendor_moved_more"]


def test_a_call_waiting_for_approval_alerts_once_naming_the_approval_and_how_to_decide() -> None:
    pending = row(
        decision="deny", rule="tollgate_approval_required", approval_id="apr-0123", reservation_id=None
    )
    alerts = rules().evaluate([pending, pending])  # the agent retried before anyone decided
    approvals = [a for a in alerts if a.kind == "approval_pending"]
    assert {a.dedup for a in approvals} == {"approval:apr-0123"}  # one claim: the sender sends it once
    text = approvals[0].text
    assert "Approval apr-0123 is waiting" in text and "agents/bot" in text and "agents/p" in text
    assert "kubectl annotate spendapproval apr-0123 tollgate.dev/decision=approve" in text
    assert "tollgate approve apr-0123" in text
    # the call that used it, and a refusal without an id, raise nothing of the kind
    used = row(approval_id="apr-0123")
    no_key = row(decision="deny", rule="tollgate_approval_required", reservation_id=None)
    assert [a for a in rules().evaluate([used, no_key]) if a.kind == "approval_pending"] == []


BUDGET = {"budget_id": "agents/support", "budget_day": "20261125", "budget_cap_micro_usd": "2000000000"}


def test_a_shared_budget_warns_at_the_warning_share_and_alerts_at_its_cap_once_per_budget_and_day() -> None:
    r = rules(cap_warn_percent=80)
    assert r.evaluate([row(spent_micro_usd="1", **BUDGET, budget_spent_micro_usd="1599999999")]) == []
    warned = r.evaluate(
        [
            row(spent_micro_usd="1", **BUDGET, budget_spent_micro_usd="1600000000"),
            row(
                spent_micro_usd="1",
                vault_key_id="agents/other",
                **BUDGET,
                budget_spent_micro_usd="1700000000",
            ),
        ]
    )
    # One dedup name for every key under the budget: the sender delivers the first only.
    assert {(a.kind, a.dedup) for a in warned} == {("budget_warning", "bwarn80:agents/support:20261125")}
    assert "SpendBudget agents/support has spent $1600.00 of its $2000.00" in warned[0].text
    (reached,) = r.evaluate(
        [row(decision="deny", rule="tollgate_budget_exceeded", **BUDGET, budget_spent_micro_usd="1999990000")]
    )
    assert (reached.kind, reached.dedup) == ("budget_reached", "budget:agents/support:20261125")
    assert "reached its daily cap" in reached.text and "agents/bot" in reached.text


def test_a_key_under_no_budget_raises_no_budget_alert() -> None:
    assert rules().evaluate([row(spent_micro_usd="1", cap_micro_usd="100000000")]) == []
