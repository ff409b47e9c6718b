"""Human approval above a threshold (spec.approval) through the real gateway, with the official stripe SDK:
a refund above it is refused with tollgate_approval_required and an approval id; once a person approves
(`tollgate approve`), the agent's retry with the same Idempotency-Key passes exactly once and is reserved
against the cap; other parameters, a rejection, an expiry and Redis being down all keep it from passing.

localstripe does not implement idempotency (it runs a replayed request again), so replays are asserted
from what Tollgate counts and records."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
import stripe
from click.testing import Result
from tests.e2e.conftest import Deploy
from tests.e2e.test_audit_trail import eventually, rows
from tests.e2e.test_metrics import scrape
from tests.e2e.test_stripe_sdk import REFUNDS, charge, refunded
from tests.support.recorder import RecordingUpstream
from typer.testing import CliRunner

from tollgate.audit.sql import AuditStore
from tollgate.cli.main import app
from tollgate.local.gateway import LocalGateway
from tollgate.local.processes import start_redis

APPROVAL = {"aboveUsd": "100", "ttl": "30m"}


def cli(gateway: LocalGateway, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--workdir", str(gateway.workdir)])


def opts(ik: str, run: str) -> Any:
    return {"idempotency_key": ik, "headers": {"X-Agent-Run-Id": run}}


def pending_id(agent: stripe.StripeClient, params: Any, options: Any) -> str:
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.refunds.create(params=params, options=options)
    err = exc.value
    assert err.http_status == 403 and err.error.code == "tollgate_approval_required"
    assert err.headers["stripe-should-retry"] == "false"
    assert "retry with the same Idempotency-Key once approved" in (err.user_message or "")
    found = re.search(r"apr-[0-9a-f]{20}", err.user_message or "")
    assert found, err.user_message
    assert structured_id(err) == found[0]
    return found[0]


def structured_id(err: stripe.StripeError) -> str | None:
    """The approval id as an agent reads it without parsing the message: the response header and the
    error object's field (which stripe-python keeps in json_body), the same in both."""
    assert err.headers is not None and err.json_body is not None
    header, field = err.headers.get("x-tollgate-approval-id"), err.json_body["error"].get("approval_id")
    assert header == field, (header, field)
    return header


def approvals_metric(gateway: LocalGateway, state: str) -> float:
    return scrape(gateway).get(("tollgate_approvals_total", (("state", state), ("vendor", "stripe"))), 0.0)


def decisions_metric(gateway: LocalGateway, state: str) -> float:
    """The audit ingester's count of approval decisions copied from Redis's log (it serves /metrics a
    moment after a fresh gateway's start() returns)."""

    def samples() -> dict[Any, float] | None:
        try:
            return scrape(gateway, gateway.audit_metrics_port)
        except httpx.ConnectError:
            return None

    return eventually(samples).get(("tollgate_approval_decisions_total", (("state", state),)), 0.0)


def approval_events(gateway: LocalGateway, aid: str) -> list[tuple[Any, ...]]:
    audit = AuditStore.from_url(gateway.audit_url)
    try:
        query = "SELECT state, decided_by, vault_key_id FROM tollgate_approval_events WHERE approval_id = :a"
        return list(audit.query(query, {"a": aid})[1])
    finally:
        audit.dispose()


def test_a_refund_above_the_threshold_waits_for_approval_then_passes_exactly_once_and_is_reserved(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway, alert_sink: RecordingUpstream
) -> None:
    run = "run-approval"
    alert_sink.clear()
    before = {s: approvals_metric(gateway, s) for s in ("pending", "used")}
    # An SDK configured to retry must still send the refused call once (Stripe-Should-Retry: false).
    agent = deploy({"dailyCapUsd": "1000", "allow": REFUNDS, "approval": APPROVAL}, max_network_retries=2)
    ch = charge(direct, 100_000)
    big: Any = {"charge": ch.id, "amount": 25_000}
    aid = pending_id(agent, big, opts("ik-apr-1", run))
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 5_000}, options=opts("ik-small", run))
    assert pending_id(agent, big, opts("ik-apr-1", run)) == aid  # a retry before the decision: same approval
    assert refunded(direct, ch.id) == 5_000

    listed = cli(gateway, "approvals")
    assert listed.exit_code == 0 and aid in listed.output and "pending" in listed.output
    assert "$250.00" in listed.output and "POST /v1/refunds" in listed.output
    approved = cli(gateway, "approve", aid, "--by", "alice")
    assert approved.exit_code == 0, approved.output
    assert f"{aid}  approved" in approved.output

    agent.v1.refunds.create(params=big, options=opts("ik-apr-1", run))  # passes
    assert refunded(direct, ch.id) == 30_000
    agent.v1.refunds.create(params=big, options=opts("ik-apr-1", run))  # the SDK's retry: a replay
    with pytest.raises(stripe.IdempotencyError):  # other parameters under the key: a new request
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 24_000}, options=opts("ik-apr-1", run))
    with pytest.raises(stripe.PermissionError) as exc:  # and with a new key, one that needs its own approval
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 24_000}, options=opts("ik-apr-2", run))
    assert exc.value.error.code == "tollgate_approval_required" and aid not in (exc.value.user_message or "")

    got = eventually(lambda: len(r := rows(gateway, "agent_run_id = :run", {"run": run})) == 7 and r)
    mine = [
        (r["decision"], r["rule"], r["cost_micro_usd"], r["replay"])
        for r in got
        if r["idempotency_key"] == "ik-apr-1"
    ]
    assert mine == [
        ("deny", "tollgate_approval_required", 0, None),
        ("deny", "tollgate_approval_required", 0, None),
        ("allow", "tollgate_allowed", 250_000_000, None),
        ("allow", "tollgate_allowed", 0, True),
        ("deny", "tollgate_idempotency_key_reused", 0, None),
    ]
    assert [r["approval_id"] for r in got if r["idempotency_key"] == "ik-apr-1"][:3] == [aid] * 3
    settled = [r["cost_micro_usd"] for r in got if r["settlement"] == "settled"]
    assert sorted(settled) == [50_000_000, 250_000_000], got
    # two approvals created (ik-apr-1, whose retry before the decision found it, and ik-apr-2), one used
    after = {state: approvals_metric(gateway, state) - before[state] for state in before}
    assert after == {"pending": 2, "used": 1}
    # and one Slack alert naming it (the audit saw two denials for it)
    named = eventually(lambda: [t for r in alert_sink.requests if aid in (t := r.json()["text"])])
    assert len(named) == 1 and "tollgate.dev/decision=approve" in named[0]


def test_an_approved_call_is_still_held_to_the_daily_cap(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    agent = deploy({"dailyCapUsd": "200", "allow": REFUNDS, "approval": APPROVAL}, max_network_retries=0)
    ch = charge(direct, 100_000)
    big: Any = {"charge": ch.id, "amount": 25_000}
    aid = pending_id(agent, big, opts("ik-cap", "run-cap"))
    assert cli(gateway, "approve", aid).exit_code == 0
    with pytest.raises(stripe.CardError) as exc:
        agent.v1.refunds.create(params=big, options=opts("ik-cap", "run-cap"))
    assert exc.value.error.code == "tollgate_cap_exceeded"
    assert refunded(direct, ch.id) == 0


def test_a_rejected_approval_refuses_the_call_and_names_who_rejected_it(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    agent = deploy({"dailyCapUsd": "1000", "allow": REFUNDS, "approval": APPROVAL})
    ch = charge(direct, 100_000)
    big: Any = {"charge": ch.id, "amount": 25_000}
    aid = pending_id(agent, big, opts("ik-rej", "run-rej"))
    assert cli(gateway, "reject", aid, "--by", "bob").exit_code == 0
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.refunds.create(params=big, options=opts("ik-rej", "run-rej"))
    assert exc.value.error.code == "tollgate_approval_rejected" and "rejected by bob" in (
        exc.value.user_message or ""
    )
    assert structured_id(exc.value) == aid
    late = cli(gateway, "approve", aid)
    assert late.exit_code == 1 and "is rejected by bob" in late.output
    assert refunded(direct, ch.id) == 0
    # the decision is in the audit store, beside the calls
    assert eventually(lambda: approval_events(gateway, aid)) == [("rejected", "bob", "agents/bot")]


def test_an_approval_not_given_in_time_expires_and_can_no_longer_be_given(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    before = decisions_metric(gateway, "expired")
    agent = deploy({"dailyCapUsd": "1000", "allow": REFUNDS, "approval": {"aboveUsd": "100", "ttl": "1s"}})
    ch = charge(direct, 100_000)
    big: Any = {"charge": ch.id, "amount": 25_000}
    aid = pending_id(agent, big, opts("ik-exp", "run-exp"))
    time.sleep(1.2)
    late = cli(gateway, "approve", aid)
    assert late.exit_code == 1 and "is expired" in late.output
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.refunds.create(params=big, options=opts("ik-exp", "run-exp"))
    assert exc.value.error.code == "tollgate_approval_expired" and structured_id(exc.value) == aid
    assert refunded(direct, ch.id) == 0
    # with nobody asking, local mode's sweep marks it expired: the audit records and counts it once
    assert eventually(lambda: approval_events(gateway, aid)) == [("expired", None, "agents/bot")]
    assert eventually(lambda: decisions_metric(gateway, "expired") - before == 1)
    time.sleep(1.5)  # more sweeps: none marks it again
    assert approval_events(gateway, aid) == [("expired", None, "agents/bot")]
    assert decisions_metric(gateway, "expired") - before == 1


def test_a_call_without_an_idempotency_key_is_told_to_send_one(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    agent = deploy({"dailyCapUsd": "1000", "allow": REFUNDS, "approval": APPROVAL})
    ch = charge(direct, 100_000)
    token = agent._requestor.api_key  # type: ignore[attr-defined]
    r = httpx.post(
        f"{gateway.base_url('stripe')}/v1/refunds",
        data={"charge": ch.id, "amount": "25000"},
        auth=(str(token), ""),
    )
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "tollgate_approval_required" and "Idempotency-Key header" in err["message"]
    assert refunded(direct, ch.id) == 0


def test_a_shadow_policy_lets_the_call_through_and_audits_that_it_would_have_waited(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    agent = deploy({"mode": "shadow", "dailyCapUsd": "1000", "allow": REFUNDS, "approval": APPROVAL})
    ch = charge(direct, 100_000)
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 25_000}, options=opts("ik-sh", "run-shadow"))
    assert refunded(direct, ch.id) == 25_000
    row = eventually(lambda: rows(gateway, "agent_run_id = 'run-shadow'"))[0]
    assert (row["decision"], row["shadow_rule"]) == ("allow", "tollgate_approval_required")
    assert cli(gateway, "approvals").output.strip() == "no approvals"


def test_with_redis_down_no_approval_is_given_and_the_call_does_not_pass(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    agent = deploy({"dailyCapUsd": "1000", "allow": REFUNDS, "approval": APPROVAL}, max_network_retries=0)
    ch = charge(direct, 100_000)
    big: Any = {"charge": ch.id, "amount": 25_000}
    aid = pending_id(agent, big, opts("ik-down", "run-down"))
    assert gateway.redis is not None
    port, workdir = gateway.redis.port, gateway.workdir
    gateway.redis.stop()
    try:
        refused = cli(gateway, "approve", aid)
        assert refused.exit_code == 1 and "nothing was decided" in refused.output
        with pytest.raises(stripe.APIError) as exc:
            agent.v1.refunds.create(params=big, options=opts("ik-down", "run-down"))
        assert exc.value.http_status == 503
    finally:
        gateway.redis = start_redis(port=port, workdir=workdir)
    assert refunded(direct, ch.id) == 0


def test_an_agent_asking_for_ever_new_calls_gets_no_more_than_ten_approvals_waiting(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    agent = deploy({"dailyCapUsd": "1000", "allow": REFUNDS, "approval": APPROVAL})
    ch = charge(direct, 100_000)
    # a new amount each time: another request (the same one again would wait for the same approval)
    ids = {
        pending_id(agent, {"charge": ch.id, "amount": 25_000 + i}, opts(f"ik-flood-{i}", "run-flood"))
        for i in range(10)
    }
    assert len(ids) == 10
    with pytest.raises(stripe.PermissionError) as exc:
        agent.v1.refunds.create(
            params={"charge": ch.id, "amount": 25_010}, options=opts("ik-flood-10", "run-flood")
        )
    message = exc.value.user_message or ""
    assert (
        exc.value.error.code == "tollgate_approval_required" and "already has 10 approvals waiting" in message
    )
    assert "apr-" not in message and structured_id(exc.value) is None  # none was created
    listed = cli(gateway, "approvals").output
    assert sum(aid in listed for aid in ids) == 10 and listed.count("apr-") == 10
    row = eventually(lambda: rows(gateway, "idempotency_key = 'ik-flood-10'"))[0]
    assert (row["rule"], row["approval_id"]) == ("tollgate_approval_required", None)


def test_the_same_call_sent_again_under_a_new_key_waits_for_and_uses_the_same_approval_once(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    # stripe-python makes a new Idempotency-Key for every call it is not given one for, as an agent's tool
    # calling create() again does: the request is the same, so is its approval.
    agent = deploy({"dailyCapUsd": "1000", "allow": REFUNDS, "approval": APPROVAL})
    ch = charge(direct, 100_000)
    big: Any = {"charge": ch.id, "amount": 25_000}
    run: Any = {"headers": {"X-Agent-Run-Id": "run-newkeys"}}
    aid = pending_id(agent, big, run)
    assert pending_id(agent, big, run) == aid
    assert cli(gateway, "approve", aid).exit_code == 0
    agent.v1.refunds.create(params=big, options=run)  # passes, under a third key
    assert refunded(direct, ch.id) == 25_000
    # the approval is used: the same call again is a new request, asking for a new approval
    again = pending_id(agent, big, run)
    assert again != aid
    assert cli(gateway, "reject", again).exit_code == 0
    with pytest.raises(stripe.PermissionError) as exc:  # and a rejected request stays rejected
        agent.v1.refunds.create(params=big, options=run)
    assert exc.value.error.code == "tollgate_approval_rejected"
    assert refunded(direct, ch.id) == 25_000


def test_the_same_call_for_another_connected_account_is_a_new_request_needing_its_own_approval(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    # The connected account is part of the request's fingerprint: an approval given for one account's
    # refund does not let the same refund through for another.
    accounts = {"connectedAccounts": ["acct_east", "acct_west"]}
    agent = deploy({"dailyCapUsd": "1000", "allow": REFUNDS, "approval": APPROVAL, **accounts})
    ch = charge(direct, 100_000)
    big: Any = {"charge": ch.id, "amount": 25_000}
    east: Any = {"stripe_account": "acct_east", "idempotency_key": "ik-east"}
    aid = pending_id(agent, big, east)
    assert cli(gateway, "approve", aid).exit_code == 0
    # the same parameters for the other account, under a new key as an agent's tool sends them
    west = pending_id(agent, big, {"stripe_account": "acct_west"})
    assert west != aid and refunded(direct, ch.id) == 0
    listed = cli(gateway, "approvals").output
    assert f"{aid}  approved" in listed and f"{west}  pending" in listed
    agent.v1.refunds.create(params=big, options=east)  # the approved call itself still passes, once
    assert refunded(direct, ch.id) == 25_000
