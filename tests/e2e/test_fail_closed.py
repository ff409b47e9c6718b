"""With Redis or ext_authz down, calls are denied (503, retry later), never forwarded."""

from __future__ import annotations

import time

import httpx
import pytest
import stripe
from tests.e2e.conftest import Deploy
from tests.e2e.test_stripe_sdk import REFUNDS, charge, refunded

from tollgate.local.gateway import LocalGateway
from tollgate.local.processes import start_redis


@pytest.fixture
def agent_and_charge(direct: stripe.StripeClient, deploy: Deploy) -> tuple[stripe.StripeClient, str]:
    agent = deploy({"dailyCapUsd": "50", "allow": REFUNDS}, max_network_retries=0)
    ch = charge(direct, 5000)
    agent.v1.refunds.create(params={"charge": ch.id, "amount": 100})  # the path works before the outage
    return agent, ch.id


def test_redis_down_means_503_and_nothing_reaches_stripe(
    agent_and_charge: tuple[stripe.StripeClient, str], direct: stripe.StripeClient, gateway: LocalGateway
) -> None:
    agent, charge_id = agent_and_charge
    assert gateway.redis is not None
    port, workdir = gateway.redis.port, gateway.workdir
    gateway.redis.stop()
    try:
        with pytest.raises(stripe.APIError) as exc:
            agent.v1.refunds.create(params={"charge": charge_id, "amount": 100})
        assert exc.value.http_status == 503
        assert exc.value.error.code == "tollgate_unavailable"
        assert exc.value.headers["stripe-should-retry"] == "true"
    finally:
        gateway.redis = start_redis(port=port, workdir=workdir)
    assert refunded(direct, charge_id) == 100


def test_while_redis_is_down_envoy_sees_extauthz_unhealthy_and_calls_still_fail_closed(
    agent_and_charge: tuple[stripe.StripeClient, str], direct: stripe.StripeClient, gateway: LocalGateway
) -> None:
    """Readiness reaches Envoy's own health check (every ext_authz host unhealthy: the cluster panics and
    still asks them), and the answer is the same 503 as before, not a call let through."""
    agent, charge_id = agent_and_charge
    assert gateway.redis is not None
    port, workdir = gateway.redis.port, gateway.workdir
    gateway.redis.stop()
    try:
        deadline = time.monotonic() + 20
        while "failed_active_hc" not in _extauthz_health(gateway):
            assert time.monotonic() < deadline, _extauthz_health(gateway)
            time.sleep(0.2)
        with pytest.raises(stripe.APIError) as exc:
            agent.v1.refunds.create(params={"charge": charge_id, "amount": 100})
        assert exc.value.http_status == 503
        assert exc.value.error.code == "tollgate_unavailable"
    finally:
        gateway.redis = start_redis(port=port, workdir=workdir)
    deadline = time.monotonic() + 20
    while "failed_active_hc" in _extauthz_health(gateway):  # healthy again once Redis answers
        assert time.monotonic() < deadline, _extauthz_health(gateway)
        time.sleep(0.2)
    assert refunded(direct, charge_id) == 100  # only the call made before the outage


def _extauthz_health(gateway: LocalGateway) -> str:
    clusters = httpx.get(f"http://127.0.0.1:{gateway.envoy_admin_port}/clusters").text
    return "\n".join(
        x for x in clusters.splitlines() if x.startswith("tollgate_extauthz::") and "health_flags" in x
    )


def test_extauthz_down_means_503_and_nothing_reaches_stripe(
    agent_and_charge: tuple[stripe.StripeClient, str], direct: stripe.StripeClient, gateway: LocalGateway
) -> None:
    agent, charge_id = agent_and_charge
    gateway.stop_extauthz()
    try:
        with pytest.raises(stripe.APIError) as exc:
            agent.v1.refunds.create(params={"charge": charge_id, "amount": 100})
        assert exc.value.http_status == 503
    finally:
        gateway.start_extauthz()
    assert refunded(direct, charge_id) == 100
    # and it recovers: the same key works again once ext_authz is back
    agent.v1.refunds.create(params={"charge": charge_id, "amount": 100})
    assert refunded(direct, charge_id) == 200
