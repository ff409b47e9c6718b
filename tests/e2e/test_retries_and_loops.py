"""Idempotent retries, the loop breaker and shadow mode through the real gateway, with the official
stripe SDK (which sends an Idempotency-Key on every POST and reuses it on its own retries).

localstripe does not implement idempotency (it runs a retried request again), so these tests assert
what Tollgate counts and records, not what the fake moved for replays."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest
import stripe
from tests.e2e.conftest import Deploy
from tests.e2e.test_audit_trail import eventually, rows
from tests.e2e.test_metrics import scrape
from tests.e2e.test_stripe_sdk import REFUNDS, charge, refunded

from tollgate.local.gateway import LocalGateway


def opts(run: str, idempotency_key: str | None = None) -> Any:
    o: dict[str, Any] = {"headers": {"X-Agent-Run-Id": run}}
    if idempotency_key:
        o["idempotency_key"] = idempotency_key
    return o


def run_rows(gateway: LocalGateway, run: str, n: int) -> list[dict[str, Any]]:
    return eventually(lambda: len(r := rows(gateway, "agent_run_id = :run", {"run": run})) == n and r)


# ---- idempotency ----------------------------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_is_counted_once_and_audited_as_a_replay(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    run = "run-idem-retry"
    agent = deploy({"dailyCapUsd": "20", "allow": REFUNDS})
    ch = charge(direct, 5000)
    params: Any = {"charge": ch.id, "amount": 1500}
    agent.v1.refunds.create(params=params, options=opts(run, "ik-retry-1"))
    agent.v1.refunds.create(params=params, options=opts(run, "ik-retry-1"))  # $15 + $15 > $20: a replay
    with pytest.raises(stripe.CardError):  # the first $15 stands: another $10 does not fit
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 1000}, options=opts(run))
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 500}, options=opts(run))  # $5 does

    got = run_rows(gateway, run, 4)
    first, retry = [r for r in got if r["idempotency_key"] == "ik-retry-1"]
    assert (first["cost_micro_usd"], first["replay"], first["settlement"]) == (15_000_000, None, "settled")
    assert (retry["decision"], retry["cost_micro_usd"], retry["replay"]) == ("allow", 0, True)
    assert retry["reservation_id"] is None and retry["settlement"] is None


def test_replays_are_counted_in_the_metrics(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    key = ("tollgate_replays_total", (("vendor", "stripe"),))
    before = scrape(gateway).get(key, 0.0)
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS})
    ch = charge(direct, 5000)
    for _ in range(3):
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 100}, options={"idempotency_key": "ik-m"})
    assert scrape(gateway).get(key, 0.0) - before == 2


def test_a_reused_key_with_other_parameters_is_an_idempotency_error(
    direct: stripe.StripeClient, deploy: Deploy
) -> None:
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS})
    ch = charge(direct, 5000)
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 100}, options={"idempotency_key": "ik-reuse"})
    with pytest.raises(stripe.IdempotencyError) as exc:
        agent.v1.refunds.create(
            params={"charge": ch.id, "amount": 4000}, options={"idempotency_key": "ik-reuse"}
        )
    assert exc.value.http_status == 400
    assert exc.value.headers["x-tollgate-rule"] == "tollgate_idempotency_key_reused"
    assert refunded(direct, ch.id) == 100


def test_after_the_vendor_refused_the_first_attempt_a_retry_is_counted_again(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    # The vendor did not run the first attempt (its reservation is released), so it would run the retry.
    run = "run-idem-released"
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS})
    ch = charge(direct, 5000)
    params: Any = {"charge": ch.id, "amount": 1500, "reason": "duplicate"}  # localstripe refuses `reason`
    with pytest.raises(stripe.InvalidRequestError):
        agent.v1.refunds.create(params=params, options=opts(run, "ik-released"))
    first = run_rows(gateway, run, 1)[0]
    assert (first["vendor_status"], first["settlement"]) == (400, "released")
    with pytest.raises(stripe.InvalidRequestError):
        agent.v1.refunds.create(params=params, options=opts(run, "ik-released"))
    retry = next(r for r in run_rows(gateway, run, 2) if r["row_id"] != first["row_id"])
    assert (retry["cost_micro_usd"], retry["replay"], retry["settlement"]) == (15_000_000, None, "released")


def test_two_hundred_concurrent_calls_with_one_idempotency_key_reserve_once(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    run = "run-idem-storm"
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS}, max_network_retries=0)
    ch = charge(direct, 50_000)

    def refund(_: int) -> str:
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 100}, options=opts(run, "ik-storm"))
        return "ok"

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(refund, range(200)))
    assert outcomes == ["ok"] * 200
    got = run_rows(gateway, run, 200)
    counted = [r for r in got if not r["replay"]]
    assert len(counted) == 1 and counted[0]["cost_micro_usd"] == 1_000_000
    assert sum(r["cost_micro_usd"] for r in got) == 1_000_000


# ---- loop breaker ---------------------------------------------------------------------------------


def test_the_loop_breaker_is_a_rate_limit_error_with_retry_after_and_the_sdk_does_not_retry(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    run = "run-loop"
    # An SDK configured to retry must still send the refused call only once (Stripe-Should-Retry: false).
    agent = deploy(
        {"dailyCapUsd": "50", "allow": REFUNDS, "loopBreaker": {"calls": 3, "per": "1m"}},
        max_network_retries=2,
    )
    ch = charge(direct, 5000)
    for _ in range(3):
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 100}, options=opts(run))
    with pytest.raises(stripe.RateLimitError) as exc:
        agent.v1.refunds.create(params={"charge": ch.id, "amount": 100}, options=opts(run))
    err = exc.value
    assert err.http_status == 429
    assert 1 <= int(err.headers["retry-after"]) <= 60
    assert err.headers["stripe-should-retry"] == "false"
    assert f"Try again in {err.headers['retry-after']} s" in err.user_message
    assert refunded(direct, ch.id) == 300
    agent.v1.charges.retrieve(ch.id, options=opts(run))  # reads move no money: never counted

    got = run_rows(gateway, run, 5)
    assert [r["rule"] for r in got].count("tollgate_loop_breaker") == 1  # no retry storm
    assert sum(r["cost_micro_usd"] for r in got if r["settlement"] == "settled") == 3_000_000


def test_an_endpoint_the_loop_breaker_names_counts_even_when_it_moves_no_money(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    run = "run-loop-free"
    auths = ["POST /v1/charges", "GET /v1/charges"]
    breaker = {"calls": 2, "per": "1m", "endpoints": ["POST /v1/charges"]}
    agent = deploy({"dailyCapUsd": "50", "allow": auths, "loopBreaker": breaker})
    params: Any = {"amount": 700, "currency": "usd", "source": "pm_card_visa", "capture": "false"}
    for _ in range(2):  # authorisations only: nothing against the cap
        agent.v1.charges.create(params=params, options=opts(run))
    with pytest.raises(stripe.RateLimitError):
        agent.v1.charges.create(params=params, options=opts(run))
    agent.v1.charges.list(options=opts(run))  # not named: never counted

    got = run_rows(gateway, run, 4)
    assert [(r["decision"], r["rule"]) for r in got].count(("deny", "tollgate_loop_breaker")) == 1
    assert sorted(r["vendor_status"] for r in got if r["decision"] == "allow") == [200, 200, 200]
    assert all(r["cost_micro_usd"] == 0 for r in got)


# ---- shadow mode ----------------------------------------------------------------------------------


def test_shadow_mode_lets_every_call_through_and_audits_what_enforcement_would_have_denied(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    run = "run-shadow"
    agent = deploy(
        {
            "mode": "shadow",
            "dailyCapUsd": "10",
            "allow": REFUNDS,
            "loopBreaker": {"calls": 2, "per": "1m"},
            "params": [{"field": "metadata[ticket]", "op": "present", "endpoints": ["POST /v1/refunds"]}],
        }
    )
    ch = charge(direct, 5000)
    t: Any = {"ticket": "T-1"}
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 800, "metadata": t}, options=opts(run))
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 500, "metadata": t}, options=opts(run))  # cap
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 100, "metadata": t}, options=opts(run))
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 100, "metadata": t}, options=opts(run))  # loop
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 100}, options=opts(run))  # param rule
    agent.v1.customers.create(params={"email": "x@example.com"}, options=opts(run))  # not on the allowlist
    assert refunded(direct, ch.id) == 1600  # every refund went through

    got = run_rows(gateway, run, 6)
    assert {r["decision"] for r in got} == {"allow"}
    assert [r["shadow_rule"] for r in got] == [
        None,
        "tollgate_cap_exceeded",
        None,
        "tollgate_loop_breaker",
        "tollgate_param_rule_broken",
        "tollgate_endpoint_not_allowed",
    ]
    would_deny = [r for r in got if r["shadow_rule"]]
    assert all(r["reason"] and r["cost_micro_usd"] == 0 for r in would_deny)
    # what an enforcing policy would have let through is what counts: $8 + $1
    assert sum(r["cost_micro_usd"] for r in got if r["settlement"] == "settled") == 9_000_000
