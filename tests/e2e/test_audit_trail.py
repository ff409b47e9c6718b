"""Every call through the real gateway becomes one audit row, and the vendor's answer settles spend."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe
from tests.e2e.conftest import REAL_KEY, Deploy
from tests.e2e.test_stripe_sdk import REFUNDS, charge
from tests.support.recorder import RecordingUpstream

from tollgate.audit.sql import AuditStore
from tollgate.local.gateway import LocalGateway


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def rows(gateway: LocalGateway, where: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    audit = AuditStore.from_url(gateway.audit_url)
    try:
        cols, data = audit.query(f"SELECT * FROM tollgate_calls WHERE {where} ORDER BY at", params)
    finally:
        audit.dispose()
    return [dict(zip(cols, r, strict=True)) for r in data]


def test_every_call_allowed_or_denied_is_one_row_with_its_decision(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    run = "run-audit-1"
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS})
    ch = charge(direct, 5000)
    opts: Any = {"headers": {"X-Agent-Run-Id": run}}
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 1200}, options=opts)
    with pytest.raises(stripe.PermissionError):
        agent.v1.payouts.create(params={"amount": 1, "currency": "usd"}, options=opts)
    with pytest.raises(stripe.CardError):
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 4000}, options=opts)
    httpx.get(f"http://127.0.0.1:{gateway.port}/nowhere", headers={"x-agent-run-id": run})

    got = eventually(lambda: len(r := rows(gateway, "agent_run_id = :run", {"run": run})) == 4 and r)
    by_rule = {r["rule"]: r for r in got}
    ok = by_rule["tollgate_allowed"]
    assert (ok["decision"], ok["vendor_status"], ok["cost_micro_usd"], ok["amount_minor"]) == (
        "allow",
        200,
        12_000_000,
        1200,
    )
    assert (ok["vault_key_id"], ok["policy_id"], ok["endpoint"]) == (
        "agents/bot",
        "agents/bot-policy",
        "refunds.create",
    )
    assert ok["idempotency_key"]  # stripe-python sends one with every POST
    assert eventually(
        lambda: rows(gateway, "row_id = :id", {"id": ok["row_id"]})[0]["settlement"] == "settled"
    )
    assert by_rule["tollgate_endpoint_not_allowed"]["decision"] == "deny"
    assert by_rule["tollgate_cap_exceeded"]["vendor_status"] is None
    assert by_rule["tollgate_unknown_route"]["path"] == "/nowhere"
    # the audit never holds a credential
    dump = repr(rows(gateway, "1=1"))
    assert REAL_KEY not in dump and "tgk_" not in dump


def test_a_refund_stripe_rejects_gives_its_reservation_back(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS}, max_network_retries=0)
    ch = charge(direct, 9000)
    # localstripe refuses a refund `reason` it does not know; Tollgate allowed and reserved $40 first
    with pytest.raises(stripe.InvalidRequestError):
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 4000, "reason": "duplicate"})
    rejected = eventually(lambda: rows(gateway, "rule = 'tollgate_allowed' AND vendor_status = 400"))
    assert eventually(
        lambda: rows(gateway, "row_id = :id", {"id": rejected[0]["row_id"]})[0]["settlement"] == "released"
    )
    # had the $40 not come back, this $40 refund would cross the $50 cap
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 4000})
    assert direct.v1.charges.retrieve(ch.id).amount_refunded == 4000


def test_reaching_the_cap_sends_one_alert_to_the_webhook(
    direct: stripe.StripeClient, deploy: Deploy, alert_sink: RecordingUpstream
) -> None:
    alert_sink.clear()
    agent = deploy({"dailyCapUsd": "10", "allow": REFUNDS})
    ch = charge(direct, 5000)
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 900})  # 90% of the cap: a warning
    for _ in range(3):
        with pytest.raises(stripe.CardError):
            agent.v1.refunds.create(params={"charge": ch.id, "amount": 500})
    texts = eventually(lambda: len(t := [r.json()["text"] for r in alert_sink.requests]) >= 2 and t)
    time.sleep(0.5)  # give any duplicate the chance to arrive
    texts = [r.json()["text"] for r in alert_sink.requests]
    assert sum("reached its daily cap" in t for t in texts) == 1
    assert sum("80%+" in t for t in texts) == 1
    assert all("agents/bot" in t for t in texts)
