"""The operator with the audit beside it (as the chart runs them): spend the cap, lose Redis's data, restart
the operator. The operator's resync brings the grants back with the tokens agents hold; the audit brings
the spend back from its ledger before any money call passes: the next refund is 402, exactly."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import redis
import stripe
from tests.operator.cluster import (
    Cluster,
    Operator,
    agent,
    eventually,
    operator_env,
    start_apiserver,
    wait_for_state,
    wait_for_token,
)
from tests.operator.conftest import REAL_KEY
from tests.support.gateways import running_gateway

from tollgate.local.gateway import LocalGateway
from tollgate.local.processes import ManagedProcess
from tollgate.store import keys


@pytest.fixture(scope="module")
def audited_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGateway]:
    with running_gateway(tmp_path_factory, "ledger-gw", {"localstripe": True}) as gw:
        yield gw


@pytest.fixture(scope="module")
def own_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    """An emulator of its own: the session-scoped operator fixture watches every namespace of the shared one."""
    proc = start_apiserver(tmp_path_factory.mktemp("ledger-kube"))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def own_cluster(own_apiserver: ManagedProcess) -> Iterator[Cluster]:
    assert own_apiserver.url
    c = Cluster(own_apiserver.url)
    yield c
    c.close()


@pytest.fixture(scope="module")
def audited_operator(
    own_apiserver: ManagedProcess, audited_gateway: LocalGateway, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    workdir = tmp_path_factory.mktemp("ledger-op")
    env = operator_env(own_apiserver, audited_gateway, workdir, TOLLGATE_OPERATOR__RESYNC_INTERVAL_S="2")
    op = Operator(env, workdir).start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture(autouse=True)
def _operator_log_has_no_traceback(audited_operator: Operator) -> Iterator[None]:
    """This module's operator, not the session-scoped one, is the one to hold to a clean log."""
    before = len(audited_operator.log())
    yield
    new = audited_operator.log()[before:]
    assert "Traceback" not in new, new


def refund(client: stripe.StripeClient, charge_id: str) -> str:
    """Refund $10; the outcome as a word: ok, cap (402), unavailable (503) or unknown_key (401)."""
    try:
        client.v1.refunds.create(params={"charge": charge_id, "amount": 1000})
        return "ok"
    except stripe.CardError as exc:
        assert exc.http_status == 402 and exc.code == "tollgate_cap_exceeded"
        return "cap"
    except stripe.APIError as exc:
        assert exc.http_status == 503
        return "unavailable"
    except stripe.AuthenticationError:
        return "unknown_key"


def test_after_a_redis_wipe_and_an_operator_restart_the_next_refund_is_402_exactly(
    own_cluster: Cluster, audited_gateway: LocalGateway, audited_operator: Operator, namespace: str
) -> None:
    cluster = own_cluster
    gw = audited_gateway
    key = base64.b64encode(REAL_KEY.encode()).decode()
    cluster.create("Secret", namespace, "stripe-key", type="Opaque", data={"api-key": key})
    cluster.create(
        "SpendPolicy",
        namespace,
        "refunds",
        spec={"vendor": "stripe", "dailyCapUsd": "50", "allow": ["POST /v1/refunds", "GET /v1/charges/*"]},
    )
    cluster.create(
        "VaultKey",
        namespace,
        "bot",
        spec={
            "policyRef": {"name": "refunds"},
            "vendorKeySecretRef": {"name": "stripe-key", "key": "api-key"},
        },
    )
    token = wait_for_token(cluster, namespace, "bot-vault-token")
    wait_for_state(cluster, "VaultKey", namespace, "bot", "Ready")
    r = redis.Redis.from_url(gw.redis_url, decode_responses=True)
    key_id = f"{namespace}/bot"
    eventually(lambda: r.exists(keys.ledger(key_id)), what="the audit marked the new key")
    direct = stripe.StripeClient(REAL_KEY, base_addresses={"api": gw.upstreams["stripe"]})
    charge = direct.v1.charges.create(params={"amount": 10000, "currency": "usd", "source": "pm_card_visa"})
    bot = agent(gw, token)
    assert [refund(bot, charge.id) for _ in range(6)] == ["ok"] * 5 + ["cap"]
    gw.wait_audited()

    audited_operator.stop()
    r.flushall()  # Redis lost everything: grants, tokens' index, spend
    assert refund(bot, charge.id) == "unknown_key"
    audited_operator.start(entry="module")
    assert wait_for_token(cluster, namespace, "bot-vault-token") == token  # agents keep their token
    outcome = eventually(
        lambda: (o := refund(bot, charge.id)) not in ("unknown_key", "unavailable") and o, timeout=60,
        what="a refund decided on restored spend",
    )  # fmt: skip
    assert outcome == "cap"
    assert direct.v1.charges.retrieve(charge.id).amount_refunded == 5000  # overshoot: 0 cents
    r.close()
