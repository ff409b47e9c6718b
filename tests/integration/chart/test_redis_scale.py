"""The chart with an external Redis Cluster or Sentinel: the URL forms the store accepts pass the values
schema, ext_authz gets the replica-ack setting, and the NetworkPolicy opens every port they need."""

from __future__ import annotations

import base64

import pytest
from tests.integration.chart.render import Chart, env_of, name, pod_spec

CLUSTER = "rediss+cluster://:hunter2@node-a:6379,node-b:6380"
SENTINEL = "redis+sentinel://sentinel-a:26379,sentinel-b:26379/mymaster/0"


@pytest.mark.parametrize("url", [CLUSTER, SENTINEL], ids=["cluster", "sentinel"])
def test_should_take_a_cluster_or_sentinel_url_as_the_external_redis(chart: Chart, url: str) -> None:
    secret = chart.render({"redis": {"external": {"url": url}}}).get("Secret", name("redis"))
    assert base64.b64decode(secret["data"]["url"]).decode() == url


def test_should_refuse_an_external_url_of_another_scheme(chart: Chart) -> None:
    assert "pattern" in chart.render_error({"redis": {"external": {"url": "redis+proxy://r:6379"}}})


def test_should_trust_asynchronous_replication_unless_replica_acks_are_asked_for(chart: Chart) -> None:
    def env(values: dict[str, object]) -> dict[str, str]:
        (container,) = pod_spec(chart.render(values).get("Deployment", name("extauthz")))["containers"]
        e = env_of(container)
        return {
            k: e[k]["value"]
            for k in ("TOLLGATE_REDIS__REPLICA_ACKS", "TOLLGATE_REDIS__REPLICA_ACK_TIMEOUT_MS")
        }

    assert env({}) == {"TOLLGATE_REDIS__REPLICA_ACKS": "0", "TOLLGATE_REDIS__REPLICA_ACK_TIMEOUT_MS": "50"}
    asked = env({"redis": {"replicaAcks": 1, "replicaAckTimeoutMs": 20, "external": {"url": CLUSTER}}})
    assert asked == {"TOLLGATE_REDIS__REPLICA_ACKS": "1", "TOLLGATE_REDIS__REPLICA_ACK_TIMEOUT_MS": "20"}


def test_should_let_extauthz_reach_every_node_and_sentinel_port(chart: Chart) -> None:
    values = {
        "redis": {"external": {"url": SENTINEL}},
        "networkPolicy": {"externalRedis": {"port": 6379, "extraPorts": [26379], "cidrs": ["10.0.0.0/8"]}},
    }
    egress = chart.render(values).get("NetworkPolicy", name("extauthz"))["spec"]["egress"]
    assert egress[0] == {
        "to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
        "ports": [{"protocol": "TCP", "port": 6379}, {"protocol": "TCP", "port": 26379}],
    }
