"""networkPolicy.clusterScoped: the agents' confinement as a cluster-scoped policy that namespace
admins cannot widen, in the three forms the README names. Each is rendered by the real helm and
checked against a strict JSON schema of the fields the chart uses (written from each project's API
reference: sig-network's AdminNetworkPolicy v1alpha1, Cilium's v2 policy, Calico's v3 GlobalNetworkPolicy;
unknown fields fail, as they would in the real CRDs' structural schemas) and for what it allows."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from tests.integration.chart.render import NAMESPACE, RELEASE, Chart, Rendered, merged

Obj = dict[str, Any]
KINDS = ["AdminNetworkPolicy", "CiliumClusterwideNetworkPolicy", "GlobalNetworkPolicy"]
LISTED = {"networkPolicy": {"agentNamespaces": ["agents-a", "agents-b"]}}
ENVOY = {
    "app.kubernetes.io/component": "envoy",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/name": "tollgate",
}


def strict(properties: Obj, required: list[str] | None = None) -> Obj:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": required or [],
    }


LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
SELECTOR = strict(
    {
        "matchLabels": LABELS,
        "matchExpressions": {
            "type": "array",
            "items": strict(
                {
                    "key": {"type": "string", "minLength": 1},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
                ["key", "operator"],
            ),
        },
    }
)
METADATA = strict({"name": {"type": "string", "maxLength": 63}, "labels": LABELS}, ["name"])


def resource(api_version: str, kind: str, spec: Obj) -> Obj:
    return strict(
        {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": METADATA, "spec": spec},
        ["apiVersion", "kind", "metadata", "spec"],
    )


ANP_PEER = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "namespaces": SELECTOR,
        "pods": strict(
            {"namespaceSelector": SELECTOR, "podSelector": SELECTOR}, ["namespaceSelector", "podSelector"]
        ),
        "networks": {"type": "array", "minItems": 1, "maxItems": 25, "items": {"type": "string"}},
    },
}
ANP_PORT = strict(
    {
        "portNumber": strict(
            {
                "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            },
            ["protocol", "port"],
        )
    },
    ["portNumber"],
)
ANP = resource(
    "policy.networking.k8s.io/v1alpha1",
    "AdminNetworkPolicy",
    strict(
        {
            "priority": {"type": "integer", "minimum": 0, "maximum": 1000},
            "subject": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "maxProperties": 1,
                "properties": ANP_PEER["properties"] | {"networks": False},
            },
            "egress": {
                "type": "array",
                "maxItems": 100,
                "items": strict(
                    {
                        "name": {"type": "string", "maxLength": 100},
                        "action": {"enum": ["Allow", "Deny", "Pass"]},
                        "to": {"type": "array", "minItems": 1, "maxItems": 100, "items": ANP_PEER},
                        "ports": {"type": "array", "maxItems": 100, "items": ANP_PORT},
                    },
                    ["action", "to"],
                ),
            },
        },
        ["priority", "subject"],
    ),
)
CILIUM_PORTS = strict(
    {
        "ports": {
            "type": "array",
            "items": strict(
                {
                    "port": {"type": "string", "pattern": "^[0-9]{1,5}$"},
                    "protocol": {"enum": ["TCP", "UDP", "SCTP", "ANY"]},
                },
                ["port"],
            ),
        }
    }
)
CILIUM_RULE = strict(
    {
        "toEndpoints": {"type": "array", "items": SELECTOR},
        "toPorts": {"type": "array", "items": CILIUM_PORTS},
        "toEntities": {
            "type": "array",
            "items": {
                "enum": [
                    "all",
                    "world",
                    "cluster",
                    "host",
                    "remote-node",
                    "kube-apiserver",
                    "init",
                    "health",
                    "unmanaged",
                    "ingress",
                ]
            },
        },
    }
)
CILIUM = resource(
    "cilium.io/v2",
    "CiliumClusterwideNetworkPolicy",
    strict(
        {
            "description": {"type": "string"},
            "endpointSelector": SELECTOR,
            "egress": {"type": "array", "items": CILIUM_RULE},
            "egressDeny": {"type": "array", "items": CILIUM_RULE},
        },
        ["endpointSelector"],
    ),
)
CALICO_RULE = strict(
    {
        "action": {"enum": ["Allow", "Deny", "Log", "Pass"]},
        "protocol": {"enum": ["TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite"]},
        "destination": strict(
            {
                "namespaceSelector": {"type": "string"},
                "selector": {"type": "string"},
                "ports": {"type": "array", "items": {"type": ["integer", "string"]}},
            }
        ),
    },
    ["action"],
)
CALICO = resource(
    "projectcalico.org/v3",
    "GlobalNetworkPolicy",
    strict(
        {
            "order": {"type": "number"},
            "namespaceSelector": {"type": "string"},
            "selector": {"type": "string"},
            "types": {"type": "array", "items": {"enum": ["Ingress", "Egress"]}},
            "egress": {"type": "array", "items": CALICO_RULE},
        }
    ),
)
SCHEMAS = {"AdminNetworkPolicy": ANP, "CiliumClusterwideNetworkPolicy": CILIUM, "GlobalNetworkPolicy": CALICO}


def rendered(chart: Chart, kind: str, extra: Obj | None = None) -> list[Obj]:
    values = merged({"networkPolicy": {"clusterScoped": {"kind": kind}}}, extra or {})
    out: Rendered = chart.render(values)
    return out.of_kind(kind)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "extra",
    [{}, LISTED, {"networkPolicy": {"agentPodLabels": None}}],
    ids=["labelled", "listed", "every pod"],
)
def test_each_form_is_valid_under_its_schema(chart: Chart, kind: str, extra: Obj) -> None:
    policies = rendered(chart, kind, extra)
    assert policies
    for policy in policies:
        jsonschema.validate(policy, SCHEMAS[kind])
        assert "namespace" not in policy["metadata"], "cluster-scoped"


def test_nothing_cluster_scoped_is_rendered_by_default_or_with_policies_off(chart: Chart) -> None:
    for values in (
        {},
        {"networkPolicy": {"enabled": False, "clusterScoped": {"kind": "AdminNetworkPolicy"}}},
    ):
        out = chart.render(values)
        assert not [o for o in out.objects if o["kind"] in KINDS]


def test_an_unknown_kind_is_refused_by_the_values_schema(chart: Chart) -> None:
    error = chart.render_error({"networkPolicy": {"clusterScoped": {"kind": "NetworkPolicy"}}})
    assert "clusterScoped" in error


def test_admin_network_policy_allows_envoy_and_dns_then_denies_everything_else(chart: Chart) -> None:
    labelled, listed = rendered(chart, "AdminNetworkPolicy", LISTED)
    assert labelled["spec"]["subject"]["pods"]["namespaceSelector"] == {
        "matchLabels": {"tollgate.dev/agents": "enabled"}
    }
    assert listed["spec"]["subject"]["pods"]["namespaceSelector"] == {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["agents-a", "agents-b"]}
        ]
    }
    envoy, dns, rest = labelled["spec"]["egress"]
    assert (envoy["action"], dns["action"], rest["action"]) == ("Allow", "Allow", "Deny")
    assert envoy["to"] == [
        {
            "pods": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                "podSelector": {"matchLabels": ENVOY},
            }
        }
    ]
    assert envoy["ports"] == [{"portNumber": {"protocol": "TCP", "port": 8080}}]
    # Deny covers the cluster and every address outside it: the vendors' APIs among them.
    assert rest["to"] == [{"namespaces": {}}, {"networks": ["0.0.0.0/0", "::/0"]}]


def test_cilium_denies_the_world_whatever_other_policies_allow(chart: Chart) -> None:
    (policy,) = rendered(chart, "CiliumClusterwideNetworkPolicy")
    spec = policy["spec"]
    assert spec["endpointSelector"] == {
        "matchLabels": {
            "k8s:io.cilium.k8s.namespace.labels.tollgate.dev/agents": "enabled",
            "k8s:tollgate.dev/agent": "true",
        }
    }
    assert spec["egressDeny"] == [{"toEntities": ["world"]}]
    envoy = spec["egress"][0]
    assert envoy["toEndpoints"] == [
        {
            "matchLabels": {
                "k8s:io.kubernetes.pod.namespace": NAMESPACE,
                **{f"k8s:{k}": v for k, v in ENVOY.items()},
            }
        }
    ]
    assert envoy["toPorts"] == [{"ports": [{"port": "8080", "protocol": "TCP"}]}]


def test_calico_runs_before_namespaced_policies_and_ends_in_deny(chart: Chart) -> None:
    (policy,) = rendered(chart, "GlobalNetworkPolicy", LISTED)
    spec = policy["spec"]
    assert spec["order"] < 1000  # Calico gives Kubernetes NetworkPolicies order 1000
    assert (
        spec["namespaceSelector"]
        == "(tollgate.dev/agents == 'enabled') || projectcalico.org/name in { 'agents-a', 'agents-b' }"
    )
    assert spec["selector"] == "tollgate.dev/agent == 'true'"
    assert spec["types"] == ["Egress"]
    assert spec["egress"][-1] == {"action": "Deny"}
    assert [r["action"] for r in spec["egress"][:-1]] == ["Allow"] * 3
    assert spec["egress"][0]["destination"]["ports"] == [8080]
