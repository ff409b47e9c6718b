"""The operator tier: the real operator process (the chart's `kopf run --standalone --all-namespaces
-m tollgate_operator.handlers`; after the restart test, `python -m tollgate_operator`) against KMock's
Kubernetes emulator in its own process, with a real gateway beside it (redis-server, ext_authz,
Envoy, localstripe as Stripe). The operator shares the gateway's Redis and Fernet key through its
environment, exactly as the chart wires them. Each test works in a namespace of its own."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import stripe
from tests.operator.cluster import Cluster, Operator, operator_env, start_apiserver
from tests.support.gateways import running_gateway

from tollgate.local.gateway import LocalGateway
from tollgate.local.processes import ManagedProcess

REAL_KEY = "sk_test_tollgate_operator_real_key"
# Where the agent namespaces' egress policy lets agents go: what the chart passes in the cluster.
CONFINEMENT = {
    "namespace_labels": {"tollgate.dev/agents": "enabled"},
    "namespaces": ["listed-agents"],
    "policy_name": "tg-tollgate-agents-egress",
    "agent_pod_labels": {"tollgate.dev/agent": "true"},
    "envoy_namespace": "tollgate",
    "envoy_pod_labels": {"app.kubernetes.io/instance": "tg", "app.kubernetes.io/component": "envoy"},
    "envoy_port": 8080,
    "labels": {"app.kubernetes.io/part-of": "tollgate"},
}
STATUS_INTERVAL_S = 0.5
_COUNTER = itertools.count(1)


# The gateway beside the operator: localstripe as Stripe, no audit (as with the chart's audit.enabled=false),
# and no sweep of expired approvals: the operator's, as in a cluster.
GATEWAY = {"localstripe": True, "audit": False, "expire_approvals": False}


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGateway]:
    with running_gateway(tmp_path_factory, "gateway", GATEWAY) as gw:
        yield gw


REQUESTS_LOG = "requests.jsonl"


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    log_dir = tmp_path_factory.mktemp("kube")
    proc = start_apiserver(log_dir, requests_log=log_dir / REQUESTS_LOG)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def api_requests(apiserver: ManagedProcess) -> Path:
    """The emulator's log of every request it served, one JSON object a line."""
    return apiserver.log_path.parent / REQUESTS_LOG


@pytest.fixture(scope="session")
def cluster(apiserver: ManagedProcess) -> Iterator[Cluster]:
    assert apiserver.url
    c = Cluster(apiserver.url)
    yield c
    c.close()


@pytest.fixture(scope="session")
def operator(
    apiserver: ManagedProcess, gateway: LocalGateway, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    workdir = tmp_path_factory.mktemp("operator")
    env = operator_env(
        apiserver,
        gateway,
        workdir,
        TOLLGATE_OPERATOR__STATUS_INTERVAL_S=str(STATUS_INTERVAL_S),
        TOLLGATE_OPERATOR__RESYNC_INTERVAL_S="2",
        TOLLGATE_OPERATOR__CONFINEMENT=json.dumps(CONFINEMENT),
    )
    op = Operator(env, workdir).start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture(autouse=True)
def _operator_log_has_no_traceback(operator: Operator) -> Iterator[None]:
    before = len(operator.log())
    yield
    new = operator.log()[before:]
    assert "Traceback" not in new, new


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    """A namespace of the test's own, so tests never see each other's objects."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower())
    return f"t{next(_COUNTER)}-{slug}"[:50].rstrip("-")


@pytest.fixture
def redis_client(gateway: LocalGateway) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(gateway.redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def direct(gateway: LocalGateway) -> stripe.StripeClient:
    """The platform's own client, straight to the Stripe fake: to make charges the agent then refunds."""
    return stripe.StripeClient(REAL_KEY, base_addresses={"api": gateway.upstreams["stripe"]})


# Measured times (what, seconds), printed in the terminal summary whether or not output is captured.
TIMINGS: list[tuple[str, float]] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("operator tier: measured times")
        for what, seconds in TIMINGS:
            terminalreporter.write_line(f"{what}: {seconds * 1000:.0f} ms")
