"""The agents' egress policy, from the chart's values to the object the operator writes: the chart
hands the operator its ConfinementSettings (one JSON env var) and the RBAC to keep NetworkPolicies;
the policy the operator builds from them lets agent Pods reach only Envoy's Pod port and the cluster
DNS, and is valid under the Kubernetes 1.35 schema."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from tests.integration.chart.render import (
    ALTERNATIVES,
    KUBERNETES_VERSION,
    NAMESPACE,
    RELEASE,
    Chart,
    Rendered,
    env_of,
    merged,
    name,
    pod_spec,
)

from tollgate_operator.confinement import ConfinementSettings, desired_policy

ENVOY_PODS = {
    "app.kubernetes.io/name": "tollgate",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/component": "envoy",
}


def confinement(rendered: Rendered) -> ConfinementSettings | None:
    (container,) = pod_spec(rendered.get("Deployment", name("operator")))["containers"]
    raw = env_of(container).get("TOLLGATE_OPERATOR__CONFINEMENT")
    return None if raw is None else ConfinementSettings.model_validate(json.loads(raw["value"]))


def written(settings: ConfinementSettings, namespace: str = "agents") -> dict[str, Any]:
    return desired_policy(namespace, settings)


def test_the_operator_confines_labelled_and_listed_namespaces(chart: Chart) -> None:
    settings = confinement(chart.render(ALTERNATIVES["several agent namespaces"]))
    assert settings is not None
    assert settings.namespace_labels == {"tollgate.dev/agents": "enabled"}
    assert settings.namespaces == ["agents-a", "agents-b", "agents-c"]
    assert settings.policy_name == f"{RELEASE}-{NAMESPACE}-agents-egress"


def test_the_written_policy_lets_agent_pods_reach_only_envoy_and_dns(default: Rendered) -> None:
    settings = confinement(default)
    assert settings is not None
    policy = written(settings)
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"tollgate.dev/agent": "true"}}
    assert spec["policyTypes"] == ["Egress"]
    assert spec["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                    "podSelector": {"matchLabels": ENVOY_PODS},
                }
            ],
            # The Pod port, not the Service port: policies see traffic after the Service is resolved.
            "ports": [{"protocol": "TCP", "port": 8080}],
        },
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
    ]
    assert policy["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    assert policy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "tollgate"


@pytest.mark.parametrize("alternative", ["defaults", "several agent namespaces", "namespaced operator"])
def test_the_written_policy_is_valid_under_the_kubernetes_schema(chart: Chart, alternative: str) -> None:
    settings = confinement(chart.render(ALTERNATIVES[alternative]))
    assert settings is not None
    kubernetes_validate.validate(written(settings), KUBERNETES_VERSION, strict=True)


def test_every_pod_of_agent_namespaces_is_confined_when_agent_labels_are_null(chart: Chart) -> None:
    settings = confinement(chart.render({"networkPolicy": {"agentPodLabels": None}}))
    assert settings is not None
    assert written(settings)["spec"]["podSelector"] == {}


def test_the_envoy_port_follows_its_listen_port(chart: Chart) -> None:
    settings = confinement(chart.render({"envoy": {"listenPort": 8443}}))
    assert settings is not None
    assert written(settings)["spec"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 8443}]


def test_nothing_is_confined_and_no_network_rights_granted_when_network_policies_are_off(
    chart: Chart,
) -> None:
    values = merged(ALTERNATIVES["several agent namespaces"], {"networkPolicy": {"enabled": False}})
    rendered = chart.render(values)
    assert confinement(rendered) is None
    assert rendered.of_kind("NetworkPolicy") == []
    resources = {
        r for role in rendered.of_kind("ClusterRole") for rule in role["rules"] for r in rule["resources"]
    }
    assert "networkpolicies" not in resources
    assert "namespaces" not in resources


def test_the_chart_itself_renders_no_agent_namespace_policy(chart: Chart) -> None:
    # The operator owns them; a chart-rendered copy would only go stale until the next upgrade.
    rendered = chart.render(ALTERNATIVES["several agent namespaces"])
    assert not [p for p in rendered.of_kind("NetworkPolicy") if p["metadata"].get("namespace") != NAMESPACE]


def test_a_namespaced_operator_keeps_policies_only_in_its_namespaces(chart: Chart) -> None:
    rendered = chart.render(ALTERNATIVES["namespaced operator"])
    for role in rendered.of_kind("Role"):
        groups = {g for rule in role["rules"] for g in rule["apiGroups"]}
        assert "networking.k8s.io" in groups, role["metadata"]["namespace"]
    for role in rendered.of_kind("ClusterRole"):
        assert "networkpolicies" not in {r for rule in role["rules"] for r in rule["resources"]}
