"""The NetworkPolicies, rendered (test_networkpolicy_cluster.py enforces them in a cluster)."""

from __future__ import annotations

from tests.integration.chart.render import ALTERNATIVES, RELEASE, Chart, Rendered, name

ENVOY_PODS = {
    "app.kubernetes.io/name": "tollgate",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/component": "envoy",
}
KUBE_DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


# The agents' egress policy is the operator's (tests/integration/chart/test_confinement.py).


class TestNetworkPolicyEnvoy:
    def test_should_admit_only_agent_pods_of_agent_namespaces_and_the_helm_test(self, chart: Chart) -> None:
        rendered = chart.render(ALTERNATIVES["several agent namespaces"])
        spec = rendered.get("NetworkPolicy", name("envoy"))["spec"]
        assert spec["podSelector"] == {"matchLabels": ENVOY_PODS}
        (rule,) = spec["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
        agents = {"matchLabels": {"tollgate.dev/agent": "true"}}
        assert rule["from"][0] == {
            "namespaceSelector": {"matchLabels": {"tollgate.dev/agents": "enabled"}},
            "podSelector": agents,
        }
        listed = [
            p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"][1:4]
        ]
        assert listed == ["agents-a", "agents-b", "agents-c"]
        assert all(p["podSelector"] == agents for p in rule["from"][1:4])
        assert rule["from"][4] == {
            "podSelector": {"matchLabels": {**ENVOY_PODS, "app.kubernetes.io/component": "test"}}
        }

    def test_should_never_admit_every_namespace_when_no_namespace_label_is_set(self, chart: Chart) -> None:
        rendered = chart.render({"networkPolicy": {"agentNamespaceLabels": None}})
        (rule,) = rendered.get("NetworkPolicy", name("envoy"))["spec"]["ingress"]
        assert all(peer.get("namespaceSelector") != {} for peer in rule["from"])

    def test_should_let_envoy_reach_extauthz_dns_and_vendor_ports_only(self, chart: Chart) -> None:
        rendered = chart.render(ALTERNATIVES["several vendors, no persistence, one replica"])
        egress = rendered.get("NetworkPolicy", name("envoy"))["spec"]["egress"]
        assert egress[0]["ports"] == [{"protocol": "TCP", "port": 9001}]
        assert egress[0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "extauthz"
        assert egress[1] == {"to": [KUBE_DNS], "ports": DNS_PORTS}
        assert egress[2]["ports"] == [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 8420}]
        assert [p["ipBlock"]["cidr"] for p in egress[2]["to"]] == ["0.0.0.0/0", "::/0"]
        # the audit sidecar's settlement of reservations in Redis
        assert egress[3]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "redis"
        assert len(egress) == 4


class TestNetworkPolicyExtauthz:
    def test_should_admit_only_envoy_on_the_authz_port(self, default: Rendered) -> None:
        (rule,) = default.get("NetworkPolicy", name("extauthz"))["spec"]["ingress"]
        assert rule == {
            "from": [{"podSelector": {"matchLabels": ENVOY_PODS}}],
            "ports": [{"protocol": "TCP", "port": 9001}],
        }

    def test_should_admit_the_listed_scrapers_on_the_metrics_port(self, chart: Chart) -> None:
        ingress = chart.render(ALTERNATIVES["service monitor"]).get("NetworkPolicy", name("extauthz"))[
            "spec"
        ]["ingress"]
        assert ingress[1]["ports"] == [{"protocol": "TCP", "port": 9090}]
        assert ingress[1]["from"] == ALTERNATIVES["service monitor"]["networkPolicy"]["metricsFrom"]

    def test_should_let_extauthz_reach_redis_dns_and_vendors(self, default: Rendered) -> None:
        egress = default.get("NetworkPolicy", name("extauthz"))["spec"]["egress"]
        assert egress[0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "redis"
        assert egress[0]["ports"] == [{"protocol": "TCP", "port": 6379}]
        assert egress[1] == {"to": [KUBE_DNS], "ports": DNS_PORTS}
        assert egress[2]["ports"] == [{"protocol": "TCP", "port": 443}]

    def test_should_let_extauthz_reach_an_external_redis_by_address(self, chart: Chart) -> None:
        egress = chart.render(ALTERNATIVES["external redis"]).get("NetworkPolicy", name("extauthz"))["spec"][
            "egress"
        ]
        assert egress[0] == {
            "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}],
            "ports": [{"protocol": "TCP", "port": 6379}],
        }


class TestNetworkPolicyRedis:
    def test_should_admit_only_extauthz_the_operator_and_the_audit_and_allow_no_egress(
        self, default: Rendered
    ) -> None:
        spec = default.get("NetworkPolicy", name("redis"))["spec"]
        (rule,) = spec["ingress"]
        components = [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in rule["from"]]
        assert components == ["extauthz", "operator", "envoy"]  # envoy: its audit sidecar
        assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        assert spec["egress"] == []
