"""Access-log lines → audit rows, including the lines Envoy wrote without asking ext_authz."""

import json

import pytest

from tollgate.audit.record import UNPARSED, from_line
from tollgate.audit.settle import SETTLED, settlement_for

ALLOWED = {
    "start_time": "2026-11-25T06:36:48.733Z",
    "method": "POST",
    "path": "/stripe/v1/refunds",
    "request_id": "req-1",
    "response_code": 200,
    "response_code_details": "via_upstream",
    "response_flags": "-",
    "upstream_host": "127.0.0.1:1",
    "duration_ms": 9,
    "bytes_received": 20,
    "bytes_sent": 240,
    "agent_run_id": "run-7",
    "authz": {
        "decision": "allow",
        "rule": "tollgate_allowed",
        "decision_id": "dec_1",
        "vendor": "stripe",
        "path": "/v1/refunds",
        "endpoint": "refunds.create",
        "vault_key_id": "agents/bot",
        "policy_id": "agents/p",
        "cost_micro_usd": "15000000",
        "amount_minor": "1500",
        "currency": "usd",
        "reservation_id": "r1",
        "day": "20261125",
        "customer": "cus_A",
        "idempotency_key": "idem-1",
    },
}


def line(**changes: object) -> str:
    entry = {**ALLOWED, **changes}
    return json.dumps(entry)


def test_an_allowed_call_carries_its_decision_cost_and_vendor_answer() -> None:
    row = from_line(line(), "f@0")
    assert (row.row_id, row.decision, row.rule, row.vendor_status) == (
        "req-1",
        "allow",
        "tollgate_allowed",
        200,
    )
    assert (row.cost_micro_usd, row.amount_minor, row.currency) == (15_000_000, 1500, "usd")
    assert (row.vault_key_id, row.policy_id, row.endpoint, row.path) == (
        "agents/bot",
        "agents/p",
        "refunds.create",
        "/v1/refunds",
    )
    assert (row.agent_run_id, row.idempotency_key, row.customer) == ("run-7", "idem-1", "cus_A")
    assert row.at.isoformat() == "2026-11-25T06:36:48.733000+00:00" and str(row.day) == "2026-11-25"
    assert settlement_for(row) == SETTLED


def test_a_denied_call_has_no_vendor_status_and_nothing_to_settle() -> None:
    authz = {**ALLOWED["authz"], "decision": "deny", "rule": "tollgate_cap_exceeded", "reason": "cap"}  # type: ignore[dict-item]
    del authz["reservation_id"]
    row = from_line(line(authz=authz, response_code=402, upstream_host=None), "f@0")
    assert (row.decision, row.rule, row.reason, row.vendor_status) == (
        "deny",
        "tollgate_cap_exceeded",
        "cap",
        None,
    )
    assert settlement_for(row) is None


@pytest.mark.parametrize(
    ("details", "rule"),
    [
        pytest.param("direct_response", "tollgate_unknown_route", id="unknown route"),
        pytest.param("path_normalization_failed", "tollgate_path_rejected", id="escaped slash in the path"),
        pytest.param("request_payload_too_large", "tollgate_body_too_large", id="body over the limit"),
        pytest.param("ext_authz_error", "tollgate_unavailable", id="ext_authz unreachable: fail closed"),
    ],
)
def test_calls_envoy_answered_itself_are_denials_with_a_rule(details: str, rule: str) -> None:
    row = from_line(
        line(authz=None, response_code_details=details, request_id=None, upstream_host=None), "f@7"
    )
    assert (row.decision, row.rule) == ("deny", rule)
    assert row.row_id.startswith("line_")
    assert (
        from_line(line(authz=None, response_code_details=details, request_id=None), "f@8").row_id
        != row.row_id
    )


def test_an_unreadable_line_is_kept_not_dropped() -> None:
    row = from_line("{not json", "f@9")
    assert row.rule == UNPARSED and "not json" in (row.reason or "")


@pytest.mark.parametrize("odd", ["²", "١٢", "--5", "-", "9" * 19, "1e3", " 7"])
def test_a_number_that_is_not_plain_ascii_digits_is_no_number_and_the_line_still_reads(odd: str) -> None:
    """int() reads some Unicode digits and raises on others: neither may cost the row its other fields."""
    authz = {**ALLOWED["authz"], "amount_minor": odd, "spent_micro_usd": odd}  # type: ignore[dict-item]
    row = from_line(line(authz=authz, duration_ms=odd), "f@0")
    assert row.rule == "tollgate_allowed" and row.reservation_id == "r1"
    assert (row.amount_minor, row.spent_micro_usd, row.duration_ms) == (None, None, None)


REFUND_SEEN = {"id": "re_1", "object": "refund", "amount": "1500", "currency": "usd", "status": "succeeded"}


def test_the_row_holds_the_parameters_and_what_the_vendor_did() -> None:
    authz = {**ALLOWED["authz"], "params": '{"amount":"1500","charge":"ch_1"}'}  # type: ignore[dict-item]
    row = from_line(line(authz=authz, vendor_response=REFUND_SEEN), "f@0")
    assert json.loads(row.params or "") == {"amount": "1500", "charge": "ch_1"}
    assert (row.vendor_object_id, row.vendor_object, row.vendor_amount_minor, row.vendor_currency) == (
        "re_1",
        "refund",
        1500,
        "usd",
    )
    assert (row.vendor_state, row.settled_micro_usd) == ("succeeded", 15_000_000)


@pytest.mark.parametrize(
    ("seen", "settled"),
    [
        ({**REFUND_SEEN, "amount": "900"}, 9_000_000),  # the vendor refunded less: settle to it
        ({**REFUND_SEEN, "amount": "2000"}, 20_000_000),  # more: counted (and alerted)
        ({**REFUND_SEEN, "currency": "eur"}, 15_000_000),  # another currency: the reservation stands
        ({**REFUND_SEEN, "amount": "12.5"}, 15_000_000),  # not an integer: no amount
        ({"id": "re_1", "object": "refund"}, 15_000_000),  # no amount reported
        (None, 15_000_000),
    ],
)
def test_a_settled_call_counts_the_vendors_amount_where_it_reported_one(
    seen: dict[str, str] | None, settled: int
) -> None:
    assert from_line(line(vendor_response=seen), "f@0").settled_micro_usd == settled


def test_a_charge_counts_what_was_captured_not_what_was_authorised() -> None:
    seen = {"id": "ch_1", "object": "charge", "amount": "1500", "amount_captured": "1000", "currency": "usd"}
    row = from_line(line(vendor_response=seen), "f@0")
    assert (row.vendor_amount_minor, row.settled_micro_usd) == (1000, 10_000_000)


def test_an_unknown_outcome_keeps_the_reservation_and_a_released_one_counts_nothing() -> None:
    unknown = from_line(line(response_code=503, vendor_response={**REFUND_SEEN, "amount": "1"}), "f@0")
    assert (unknown.settlement, unknown.settled_micro_usd) == ("unknown", 15_000_000)
    released = from_line(line(response_code=402), "f@0")
    assert (released.settlement, released.settled_micro_usd) == ("released", 0)


def test_what_a_denied_call_never_reached_is_not_read_from_its_answer() -> None:
    authz = {**ALLOWED["authz"], "decision": "deny", "rule": "tollgate_cap_exceeded"}  # type: ignore[dict-item]
    row = from_line(line(authz=authz, vendor_response=REFUND_SEEN), "f@0")
    assert row.vendor_object_id is None and row.settled_micro_usd is None


def test_the_approval_a_call_waited_for_or_used_is_kept() -> None:
    pending = from_line(
        line(
            authz={
                **ALLOWED["authz"],
                "decision": "deny",
                "rule": "tollgate_approval_required",
                "approval_id": "apr-1",
            }
        ),  # type: ignore[dict-item]
        "f@0",
    )
    assert (pending.rule, pending.approval_id) == ("tollgate_approval_required", "apr-1")
    assert from_line(line(), "f@0").approval_id is None
