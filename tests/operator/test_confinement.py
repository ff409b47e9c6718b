"""Agent namespaces confined by the operator, not by `helm upgrade`: a namespace labelled
`tollgate.dev/agents=enabled` after install gets the egress NetworkPolicy (Envoy and DNS only) within
seconds; the policy comes back when it is deleted or edited; it goes when the label goes. Each policy
the operator writes is validated against the Kubernetes 1.35 schema (the emulator validates nothing)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import kubernetes_validate
from tests.operator.cluster import Cluster, eventually
from tests.operator.conftest import CONFINEMENT, TIMINGS

AGENTS = {"tollgate.dev/agents": "enabled"}
POLICY = str(CONFINEMENT["policy_name"])
KUBERNETES_VERSION = "1.35.0"
_NAMES = itertools.count(1)
AGENT_PODS = {"matchLabels": {"tollgate.dev/agent": "true"}}

ENVOY_AND_DNS = [
    {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tollgate"}},
                "podSelector": {"matchLabels": CONFINEMENT["envoy_pod_labels"]},
            }
        ],
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


def new_namespace(cluster: Cluster, labels: dict[str, str] | None = None) -> str:
    name = f"agents-{next(_NAMES)}-{int(time.time() * 1000) % 100000}"
    cluster.create_namespace(name, labels)
    return name


def confined(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """The namespace's egress policy once it is exactly as specified (eventually)."""

    def as_specified() -> dict[str, Any] | None:
        policy = cluster.network_policy(namespace, POLICY)
        if policy is None:
            return None
        spec = policy["spec"]
        ok = (
            spec.get("egress") == ENVOY_AND_DNS
            and spec.get("policyTypes") == ["Egress"]
            and "ingress" not in spec
            and spec.get("podSelector") == AGENT_PODS
        )
        return policy if ok else None

    return eventually(as_specified, timeout=15, what=f"the egress policy in {namespace} as specified")


def timed(what: str, started: float) -> None:
    TIMINGS.append((what, time.monotonic() - started))


def test_a_namespace_labelled_after_install_is_confined_within_seconds(cluster: Cluster) -> None:
    namespace = new_namespace(cluster)
    started = time.monotonic()
    cluster.label_namespace(namespace, AGENTS)
    policy = confined(cluster, namespace)
    timed("label → egress NetworkPolicy in place", started)
    assert policy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "tollgate"
    assert policy["metadata"]["labels"]["app.kubernetes.io/part-of"] == "tollgate"
    served = {k: policy[k] for k in ("apiVersion", "kind", "spec")}
    served["metadata"] = {k: policy["metadata"][k] for k in ("name", "namespace", "labels")}
    kubernetes_validate.validate(served, KUBERNETES_VERSION, strict=True)


def test_a_namespace_labelled_at_creation_or_listed_is_confined_and_others_are_not(cluster: Cluster) -> None:
    labelled = new_namespace(cluster, AGENTS)
    plain = new_namespace(cluster, {"team": "web"})
    cluster.create_namespace("listed-agents")  # named in the settings' `namespaces`, no label
    confined(cluster, labelled)
    confined(cluster, "listed-agents")
    # Both were handled by now (namespace events arrive in order), and the plain one got nothing.
    assert cluster.network_policies(plain) == []


def test_a_deleted_policy_is_recreated(cluster: Cluster) -> None:
    namespace = new_namespace(cluster, AGENTS)
    confined(cluster, namespace)
    started = time.monotonic()
    cluster.delete_network_policy(namespace, POLICY)
    confined(cluster, namespace)
    timed("deleted egress NetworkPolicy → recreated", started)


def test_an_edited_policy_is_put_back_as_specified(cluster: Cluster) -> None:
    namespace = new_namespace(cluster, AGENTS)
    confined(cluster, namespace)
    widened = {
        "spec": {
            "egress": [*ENVOY_AND_DNS, {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
            "podSelector": {"matchLabels": {"tollgate.dev/agent": "true"}, "matchExpressions": []},
            "ingress": [{}],
            "policyTypes": ["Ingress", "Egress"],
        },
        "metadata": {"labels": {"tollgate.dev/policy": None}},
    }
    started = time.monotonic()
    cluster.patch_network_policy(namespace, POLICY, widened)
    policy = confined(cluster, namespace)
    timed("widened egress NetworkPolicy → restored", started)
    assert policy["metadata"]["labels"]["tollgate.dev/policy"] == "agents-egress"


def test_removing_the_label_removes_the_policy(cluster: Cluster) -> None:
    namespace = new_namespace(cluster, AGENTS)
    confined(cluster, namespace)
    cluster.label_namespace(namespace, {"tollgate.dev/agents": None})
    eventually(
        lambda: cluster.network_policy(namespace, POLICY) is None, timeout=15, what="the policy removed"
    )
    # and it stays gone: nothing puts it back while the namespace is unlabelled
    time.sleep(2.5)  # longer than the resync interval (2 s) of the operator under test
    assert cluster.network_policy(namespace, POLICY) is None
