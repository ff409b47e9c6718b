"""Rule 7b: which calls wait for a person (spec.approval), the approval id, and the verdicts built from the
commit's answers (pending, rejected, expired, used), as each vendor's SDK sees them. Pure."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import stripe
from google.protobuf import struct_pb2
from stripe._api_requestor import _APIRequestor
from tests.builders import NOW, call, grant, spend_policy

from tollgate.decide.engine import (
    approval_expired,
    approval_needs_key,
    approval_rejected,
    approval_required,
    approval_used,
    approvals_waiting,
    needs_approval,
)
from tollgate.decide.idempotency import approval_id
from tollgate.decide.rules import Rule
from tollgate.decide.verdict import Allow, Deny
from tollgate.vendors import vendor
from tollgate_extauthz.check import Decision
from tollgate_extauthz.response import denied, to_response

APPROVAL = {"aboveUsd": "100", "ttl": "30m"}
G = grant(spend_policy(approval=APPROVAL))
SHADOW = grant(spend_policy(approval=APPROVAL, mode="shadow"))
REFUND = call("POST", "/v1/refunds", {"charge": "ch_1", "amount": "25000"})
BIG = Allow(cost_micro_usd=250_000_000)
AID = approval_id("agents/support-bot", "ik_1")


@pytest.mark.parametrize(
    ("policy", "method", "path", "cost", "needed"),
    [
        pytest.param(APPROVAL, "POST", "/v1/refunds", 100_000_001, True, id="a micro-dollar above → needed"),
        pytest.param(APPROVAL, "POST", "/v1/refunds", 100_000_000, False, id="at the threshold → not"),
        pytest.param(APPROVAL, "POST", "/v1/charges", 500_000_000, True, id="any endpoint when none listed"),
        pytest.param(
            {**APPROVAL, "endpoints": ["POST /v1/refunds"]}, "POST", "/v1/charges", 500_000_000, False,
            id="an endpoint not listed → not",
        ),
        pytest.param(
            {**APPROVAL, "endpoints": ["POST /v1/refunds"]}, "POST", "/v1/refunds", 500_000_000, True,
            id="a listed endpoint → needed",
        ),
        pytest.param({"aboveUsd": 0}, "POST", "/v1/refunds", 1, True, id="aboveUsd 0: every priced call"),
        pytest.param({"aboveUsd": 0}, "GET", "/v1/charges", 0, False, id="a free call never"),
        pytest.param(None, "POST", "/v1/refunds", 500_000_000, False, id="no spec.approval → never"),
    ],
)  # fmt: skip
def test_which_calls_need_a_persons_approval(
    policy: dict | None, method: str, path: str, cost: int, needed: bool
) -> None:
    g = grant(spend_policy(approval=policy))
    assert needs_approval(g, call(method, path), Allow(cost_micro_usd=cost)) is needed


def test_a_call_shadow_mode_already_lets_through_is_not_asked_again() -> None:
    shadowed = Allow(cost_micro_usd=0, shadow_denial=Deny(Rule.CAP_EXCEEDED, "over"))
    assert not needs_approval(G, REFUND, replace_cost(shadowed, 250_000_000))


def replace_cost(a: Allow, cost: int) -> Allow:
    return Allow(cost_micro_usd=cost, shadow_denial=a.shadow_denial)


def test_the_approval_id_is_one_per_key_and_idempotency_key_and_a_kubernetes_name() -> None:
    assert approval_id("agents/bot", "ik_1") == approval_id("agents/bot", "ik_1")
    assert approval_id("agents/bot", "ik_1") != approval_id("agents/bot", "ik_2")
    assert approval_id("agents/bot", "ik_1") != approval_id("agents/other", "ik_1")
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", AID) and len(AID) <= 63


def test_pending_names_the_approval_the_amounts_and_how_to_retry() -> None:
    v = approval_required(G, BIG, AID, NOW + timedelta(minutes=30))
    assert isinstance(v, Deny) and v.rule is Rule.APPROVAL_REQUIRED and v.status == 403
    assert AID in v.message
    assert "$250.00" in v.message and "$100.00" in v.message and "agents/refunds" in v.message
    assert "retry with the same Idempotency-Key once approved" in v.message
    assert "2026-11-25T12:30:00+00:00" in v.message


def test_a_call_without_an_idempotency_key_is_told_to_send_one() -> None:
    v = approval_needs_key(G, BIG)
    assert isinstance(v, Deny) and v.rule is Rule.APPROVAL_REQUIRED and v.param == "idempotency_key"
    assert "Idempotency-Key" in v.message and "apr-" not in v.message


def test_rejected_expired_and_used_approvals_are_refused_with_clear_messages() -> None:
    rejected = approval_rejected(G, AID, "alice")
    expired = approval_expired(G, AID)
    used = approval_used(G, AID)
    assert isinstance(rejected, Deny) and rejected.rule is Rule.APPROVAL_REJECTED
    assert f"Approval {AID} for this call was rejected by alice" in rejected.message
    assert isinstance(expired, Deny) and expired.rule is Rule.APPROVAL_EXPIRED
    assert "spec.approval.ttl: 30 min" in expired.message and "new Idempotency-Key" in expired.message
    assert isinstance(used, Deny) and used.rule is Rule.APPROVAL_USED
    assert "one approval lets one call through" in used.message
    assert {rejected.status, expired.status, used.status} == {403}


def test_a_shadow_policy_lets_the_call_through_records_it_and_asks_nobody() -> None:
    for v in (approval_required(SHADOW, BIG), approval_needs_key(SHADOW, BIG)):
        assert isinstance(v, Allow) and v.cost_micro_usd == 0
        assert v.shadow_denial is not None and v.shadow_denial.rule is Rule.APPROVAL_REQUIRED


def rendered(name: str, deny: Deny, aid: str | None = None) -> tuple[int, dict[str, str], dict]:
    v = vendor(name)
    assert v is not None
    resp = denied(deny, "dec_1", v, struct_pb2.Struct(), approval_id=aid)
    headers = {h.header.key: h.header.value for h in resp.denied_response.headers}
    return resp.denied_response.status.code, headers, json.loads(resp.denied_response.body)


def test_stripe_python_raises_permission_error_with_the_rule_and_does_not_retry() -> None:
    deny = approval_required(G, BIG, AID)
    assert isinstance(deny, Deny)
    status, headers, body = rendered("stripe", deny, AID)
    assert (status, body["error"]["code"]) == (403, "tollgate_approval_required")
    assert headers["stripe-should-retry"] == "false"
    assert headers["x-tollgate-rule"] == "tollgate_approval_required"
    err = _APIRequestor().specific_v1_api_error(json.dumps(body), status, body, headers, body["error"])
    assert isinstance(err, stripe.PermissionError) and AID in (err.user_message or "")
    # the id as fields of their own: no need to parse the message
    assert err.headers is not None and err.headers["x-tollgate-approval-id"] == AID
    assert err.error is not None and err.error.approval_id == AID  # type: ignore[attr-defined]
    assert err.json_body is not None and err.json_body["error"]["approval_id"] == AID


def test_resend_gets_its_own_403_shape() -> None:
    deny = approval_required(
        grant(spend_policy(vendor="resend", allow=["POST /emails"], approval=APPROVAL)), BIG, AID
    )
    assert isinstance(deny, Deny)
    status, headers, body = rendered("resend", deny, AID)
    assert (status, body["name"]) == (403, "validation_error") and AID in body["message"]
    assert headers["x-tollgate-rule"] == "tollgate_approval_required"
    assert (headers["x-tollgate-approval-id"], body["approval_id"]) == (AID, AID)


@pytest.mark.parametrize("name", ["stripe", "resend"])
def test_a_denial_with_no_approval_names_none(name: str) -> None:
    deny = approvals_waiting(G, BIG, 10)  # refused without creating one
    assert isinstance(deny, Deny)
    _, headers, body = rendered(name, deny)
    assert "x-tollgate-approval-id" not in headers and "approval_id" not in json.dumps(body)


def test_the_decisions_approval_id_reaches_the_denial() -> None:
    v = vendor("stripe")
    deny = approval_rejected(G, AID, "alice")
    assert v is not None and isinstance(deny, Deny)
    resp = to_response(Decision("dec_1", deny, G, approval_id=AID), REFUND, v).denied_response
    assert {h.header.key: h.header.value for h in resp.headers}["x-tollgate-approval-id"] == AID
    assert json.loads(resp.body)["error"]["approval_id"] == AID


def test_a_key_with_too_many_approvals_waiting_is_told_to_retry_those_not_to_ask_again() -> None:
    v = approvals_waiting(G, BIG, 10)
    assert isinstance(v, Deny) and v.rule is Rule.APPROVAL_REQUIRED and "apr-" not in v.message
    assert (
        "already has 10 approvals waiting" in v.message
        and "do not send this call again with a new key" in v.message
    )
