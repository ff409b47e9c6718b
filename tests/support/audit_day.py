"""One busy day in an audit store, for the daily report's tests: caps hit, a loop broken, denials,
outcomes nothing proved, a shadow policy, and calls on the days either side that must not count."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from tollgate.audit.record import AuditRow
from tollgate.audit.sql import AuditStore, Checkpoint

DAY = date(2026, 11, 30)
USD = 1_000_000
REFUNDS, BILLING, TRIAL = "agents/support-refunds", "agents/billing", "agents/trial"
BOT_A, BOT_B, COLLECTOR, TRIAL_BOT = "agents/bot-a", "agents/bot-b", "agents/collector", "agents/trial-bot"
CAPS = {REFUNDS: 200 * USD, BILLING: 2000 * USD, TRIAL: 5 * USD}


def _row(n: int, at: datetime, key: str, policy: str, **kw: Any) -> AuditRow:
    allowed = kw.get("decision", "allow") == "allow"
    base: dict[str, Any] = {
        "row_id": f"r{n}",
        "at": at,
        "day": at.date(),
        "decision": "allow",
        "rule": "tollgate_allowed",
        "vendor": "stripe",
        "method": "POST",
        "path": "/v1/refunds",
        "endpoint": "POST /v1/refunds",
        "vault_key_id": key,
        "policy_id": policy,
        "cap_micro_usd": CAPS[policy],
        "vendor_status": 200 if allowed else None,
        "reservation_id": f"res{n}" if allowed else None,
    }
    return AuditRow(**{**base, **kw})


def rows() -> tuple[list[AuditRow], dict[str, str]]:
    """The rows, and the settlement the ingester would have written for each reservation."""
    t = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
    h = lambda hours, minutes=0: t + timedelta(hours=hours, minutes=minutes)  # noqa: E731
    out = [
        _row(1, h(9), BOT_A, REFUNDS, cost_micro_usd=50 * USD),
        _row(2, h(11), BOT_A, REFUNDS, cost_micro_usd=100 * USD),
        _row(3, h(12), BOT_A, REFUNDS, cost_micro_usd=30 * USD, vendor_status=402),  # refused: nothing moved
        _row(4, h(13), BOT_A, REFUNDS, cost_micro_usd=50 * USD),  # $200: at the cap
        _row(
            5, h(14), BOT_A, REFUNDS, decision="deny", rule="tollgate_cap_exceeded", cost_micro_usd=10 * USD
        ),
        _row(
            6, h(14, 5), BOT_A, REFUNDS, decision="deny", rule="tollgate_cap_exceeded", cost_micro_usd=5 * USD
        ),
        _row(7, h(10), BOT_B, REFUNDS, cost_micro_usd=20 * USD),
        *(
            _row(
                8 + i,
                h(10, 1 + i),
                BOT_B,
                REFUNDS,
                decision="deny",
                rule="tollgate_loop_breaker",
                cost_micro_usd=USD,
            )
            for i in range(3)
        ),
        *(
            _row(
                11 + i,
                h(15, i),
                BOT_B,
                REFUNDS,
                decision="deny",
                rule="tollgate_endpoint_not_allowed",
                method="POST",
                path="/v1/payouts",
                cap_micro_usd=None,
            )
            for i in range(2)
        ),
        _row(13, h(8), COLLECTOR, BILLING, cost_micro_usd=1_234_560_000, path="/v1/invoices/in_1/pay"),
        _row(
            14,
            h(16),
            COLLECTOR,
            BILLING,
            cost_micro_usd=300 * USD,
            vendor_status=503,
            path="/v1/payment_intents",
        ),
        _row(
            15, h(16, 30), COLLECTOR, BILLING, cost_micro_usd=7_500_000, vendor_status=0, response_flags="UC"
        ),
        _row(
            16, h(17), COLLECTOR, BILLING, method="GET", path="/v1/invoices", reservation_id=None
        ),  # free read
        _row(17, h(9, 30), TRIAL_BOT, TRIAL, cost_micro_usd=4 * USD, mode="shadow"),
        _row(
            18,
            h(9, 45),
            TRIAL_BOT,
            TRIAL,
            cost_micro_usd=3 * USD,
            mode="shadow",
            shadow_rule="tollgate_cap_exceeded",
        ),
        # No key: Envoy answered itself.
        _row(
            19,
            h(18),
            BOT_A,
            REFUNDS,
            decision="deny",
            rule="tollgate_unknown_route",
            vault_key_id=None,
            policy_id=None,
            cap_micro_usd=None,
            path="/nowhere",
        ),
        # The days either side.
        _row(20, h(-1), BOT_A, REFUNDS, cost_micro_usd=999 * USD),
        _row(21, h(24, 1), COLLECTOR, BILLING, cost_micro_usd=888 * USD),
        _row(22, h(24, 2), BOT_B, REFUNDS, decision="deny", rule="tollgate_loop_breaker", cost_micro_usd=USD),
    ]
    settlements = {
        r.row_id: ("settled" if r.vendor_succeeded else "released")
        for r in out
        if r.reservation_id and r.decision == "allow"
    }
    settlements.update({"r14": "unknown", "r15": "unknown"})  # a 5xx and no answer: nothing proved
    return out, settlements


def fill(url: str) -> AuditStore:
    store = AuditStore.from_url(url)
    store.migrate()
    data, settlements = rows()
    # settlement is a field of the row (AuditStore.append takes rows only)
    data = [r.model_copy(update={"settlement": settlements.get(r.row_id, r.settlement)}) for r in data]
    store.append(data, "test", Checkpoint("x", 1))
    return store
