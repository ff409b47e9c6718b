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
