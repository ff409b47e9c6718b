"""ext_authz's Prometheus metrics, scraped from the real process after real calls."""

from __future__ import annotations

import httpx
import pytest
import stripe
from prometheus_client.parser import text_string_to_metric_families
from tests.e2e.conftest import Deploy
from tests.e2e.test_stripe_sdk import REFUNDS, charge

from tollgate.local.gateway import LocalGateway


def scrape(
    gateway: LocalGateway, port: int | None = None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of a /metrics: the first ext_authz process's, or the one on `port`."""
    text = httpx.get(f"http://127.0.0.1:{port or gateway.metrics_ports[0]}/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_decisions_reserved_spend_and_latency_are_exported(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    before = scrape(gateway)
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS})
    ch = charge(direct, 5000)
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 700})
    with pytest.raises(stripe.PermissionError):
        agent.v1.payouts.create(params={"amount": 1, "currency": "usd"})
    after = scrape(gateway)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("tollgate_decisions_total", vendor="stripe", decision="allow", rule="tollgate_allowed") == 1
    assert (
        delta(
            "tollgate_decisions_total", vendor="stripe", decision="deny", rule="tollgate_endpoint_not_allowed"
        )
        == 1
    )
    policy = "agents/bot-policy"
    assert delta("tollgate_reserved_micro_usd_total", vendor="stripe", policy=policy) == 7_000_000
    assert delta("tollgate_check_duration_seconds_count", vendor="stripe") == 2
    # $7 of a $50 cap: the key's share lands in the 0.25 bucket, and in none below it.
    share = "tollgate_cap_spent_ratio_bucket"
    assert delta(share, vendor="stripe", policy=policy, le="0.25") == 1
    assert delta("tollgate_cap_spent_ratio_count", vendor="stripe", policy=policy) == 1
    assert after[("tollgate_ready", ())] == 1
    # Labels name policies, never keys: no label value is the key's id.
    assert all(value != "agents/bot" for (_, labels) in after for (_, value) in labels)
