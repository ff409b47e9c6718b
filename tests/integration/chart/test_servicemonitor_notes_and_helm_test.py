"""The ServiceMonitor, the `helm test` Pod and the CRD templates."""

from __future__ import annotations

from tests.integration.chart.render import (
    ALTERNATIVES,
    NAMESPACE,
    Chart,
    Rendered,
    Values,
    env_of,
    install_notes,
    name,
)


class TestServiceMonitor:
    def test_should_be_absent_by_default(self, default: Rendered) -> None:
        assert default.of_kind("ServiceMonitor") == []

    def test_should_scrape_the_extauthz_metrics_port_when_enabled(self, chart: Chart) -> None:
        rendered = chart.render(ALTERNATIVES["service monitor"])
        monitor = rendered.get("ServiceMonitor", name("extauthz"))
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "prometheus"
        service = rendered.get("Service", name("extauthz"))
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert monitor["spec"]["endpoints"] == [
            {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
        ]
        assert {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"} in service[
            "spec"
        ]["ports"]


class TestHelmTestFailClosed:
    def test_should_call_envoy_with_an_unknown_key_and_expect_tollgates_401(self, default: Rendered) -> None:
        pod = default.get("Pod", name("test-fail-closed"))
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert pod["spec"]["restartPolicy"] == "Never"
        (container,) = pod["spec"]["containers"]
        assert env_of(container)["GATEWAY_URL"]["value"] == (
            f"http://tg-envoy.{NAMESPACE}.svc.cluster.local:8080/stripe/v1/balance"
        )
        script = container["command"][2]
        assert "Bearer tgk_" in script
        assert "error.code == 401" in script
        assert 'rule == "tollgate_key_unknown"' in script
        compile(script, "test-fail-closed", "exec")

    def test_should_be_admitted_by_the_envoy_network_policy(self, default: Rendered) -> None:
        pod_labels = default.get("Pod", name("test-fail-closed"))["metadata"]["labels"]
        (rule,) = default.get("NetworkPolicy", name("envoy"))["spec"]["ingress"]
        assert any(
            "namespaceSelector" not in p and p["podSelector"]["matchLabels"].items() <= pod_labels.items()
            for p in rule["from"]
        )


class TestNotes:
    def notes(self, chart: Chart, values: Values) -> str:
        return install_notes(chart, values)

    def test_should_tell_how_to_point_an_sdk_at_envoy_and_revoke_a_key(self, chart: Chart) -> None:
        notes = self.notes(chart, {})
        assert f"http://tg-envoy.{NAMESPACE}.svc:8080/stripe" in notes
        assert "create secret generic stripe-platform-key" in notes
        assert "kind: SpendPolicy" in notes
        assert "kind: VaultKey" in notes
        assert "secretKeyRef: {name: support-bot-vault-token, key: token}" in notes
        assert "get sp,vk" in notes
        assert "delete vk support-bot" in notes
        assert "kubectl label namespace <ns> tollgate.dev/agents=enabled\n" in notes

    def test_should_warn_about_unsafe_choices(self, chart: Chart) -> None:
        notes = self.notes(chart, ALTERNATIVES["several vendors, no persistence, one replica"])
        assert "redis.persistence.enabled is false" in notes
        notes = self.notes(chart, ALTERNATIVES["network policies off, agent pods unlabelled"])
        assert "networkPolicy.enabled is false" in notes

    def test_should_name_the_confined_namespaces(self, chart: Chart) -> None:
        notes = self.notes(chart, ALTERNATIVES["several agent namespaces"])
        assert "Always confined (networkPolicy.agentNamespaces): agents-a, agents-b, agents-c." in notes
        assert "kubectl -n agents-a get sp,vk" in notes


# The CRDs: tests/integration/chart/test_crds.py.
