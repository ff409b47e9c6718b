"""Agent namespaces confined the moment they are labelled: in every namespace that carries the agent
label (or is listed), one egress NetworkPolicy lets the agent Pods reach only Tollgate's Envoy and the
cluster DNS. The operator creates it when the label appears, puts it back when it is deleted or edited,
and removes it when the label goes.

Plain functions over a small `NetworkPolicies` protocol: no kopf here (handlers.py calls in), so the
rules are tested without an API server and the handler stays a few lines."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel, Field

MANAGED_BY = {"app.kubernetes.io/managed-by": "tollgate"}
# Marks the policies this module owns, so a watch can select them and a tamper is seen.
ROLE_LABEL = "tollgate.dev/policy"
ROLE = "agents-egress"


class ConfinementSettings(BaseModel):
    """Where agents live and where they may go; the chart fills it from its values (one JSON env var)."""

    namespace_labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels that mark an agent namespace (all must match); none means only `namespaces`.",
    )
    namespaces: list[str] = Field(default_factory=list, description="Agent namespaces named explicitly.")
    policy_name: str = Field(default="tollgate-agents-egress", description="Name of the policy in each one.")
    agent_pod_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels of the agent Pods; every Pod of the namespace when empty."
    )
    envoy_namespace: str = Field(description="Namespace of Tollgate's Envoy Pods.")
    envoy_pod_labels: dict[str, str] = Field(min_length=1, description="Labels of Tollgate's Envoy Pods.")
    envoy_port: int = Field(gt=0, lt=65536, description="Envoy's Pod port (policies see Pod ports).")
    dns_namespace_labels: dict[str, str] = Field(
        default_factory=lambda: {"kubernetes.io/metadata.name": "kube-system"}
    )
    dns_pod_labels: dict[str, str] = Field(default_factory=lambda: {"k8s-app": "kube-dns"})
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels on each policy.")


class NetworkPolicies(Protocol):
    """The four calls confinement needs; objects are plain dicts as the API serves them (camelCase)."""

    async def get_network_policy(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def create_network_policy(self, namespace: str, body: dict[str, Any]) -> None: ...
    async def patch_network_policy(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...
    async def delete_network_policy(self, namespace: str, name: str) -> None: ...


class Action(enum.Enum):
    CREATED = "created"
    RESTORED = "restored"
    KEPT = "kept"
    REMOVED = "removed"
    NONE = "none"


def is_agent_namespace(name: str, labels: Mapping[str, str], settings: ConfinementSettings) -> bool:
    if name in settings.namespaces:
        return True
    wanted = settings.namespace_labels
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def desired_policy(namespace: str, settings: ConfinementSettings) -> dict[str, Any]:
    """The egress policy of one agent namespace: Envoy's Pod port and DNS, nothing else."""
    selector = {"matchLabels": dict(settings.agent_pod_labels)} if settings.agent_pod_labels else {}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": settings.policy_name,
            "namespace": namespace,
            "labels": {**settings.labels, **MANAGED_BY, ROLE_LABEL: ROLE},
        },
        "spec": {
            "podSelector": selector,
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": settings.envoy_namespace}
                            },
                            "podSelector": {"matchLabels": dict(settings.envoy_pod_labels)},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": settings.envoy_port}],
                },
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": dict(settings.dns_namespace_labels)},
                            "podSelector": {"matchLabels": dict(settings.dns_pod_labels)},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
            ],
        },
    }


def restoring_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) that turns `current` into `desired`: keys `desired` lacks become
    null (so an added `ingress` rule or matchExpressions goes too), lists and scalars are replaced.
    Empty when nothing differs."""
    patch: dict[str, Any] = {}
    for key, want in desired.items():
        have = current.get(key)
        if isinstance(want, Mapping) and want and isinstance(have, Mapping):
            sub = restoring_patch(have, want)
            if sub:
                patch[key] = sub
        elif have != want:
            patch[key] = want
    for key in current:
        if key not in desired:
            patch[key] = None
    return patch


def _owned_parts(policy: Mapping[str, Any]) -> dict[str, Any]:
    """What the operator keeps as specified: the whole spec, and its own labels (others may add labels
    or annotations; they select nothing and widen nothing)."""
    meta = policy.get("metadata") or {}
    return {"metadata": {"labels": dict(meta.get("labels") or {})}, "spec": dict(policy.get("spec") or {})}


def _is_ours(policy: Mapping[str, Any]) -> bool:
    labels = (policy.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(ROLE_LABEL) == ROLE)


async def reconcile_namespace(
    api: NetworkPolicies, namespace: str, labels: Mapping[str, str], settings: ConfinementSettings
) -> Action:
    """Make one namespace's egress policy what its labels ask for, and say what was done."""
    current = await api.get_network_policy(namespace, settings.policy_name)
    if not is_agent_namespace(namespace, labels, settings):
        if current is not None and _is_ours(current):
            await api.delete_network_policy(namespace, settings.policy_name)
            return Action.REMOVED
        return Action.NONE
    desired = desired_policy(namespace, settings)
    if current is None:
        await api.create_network_policy(namespace, desired)
        return Action.CREATED
    have, want = _owned_parts(current), _owned_parts(desired)
    want["metadata"]["labels"] = {**have["metadata"]["labels"], **want["metadata"]["labels"]}
    patch = restoring_patch(have, want)
    if not patch:
        return Action.KEPT
    await api.patch_network_policy(namespace, settings.policy_name, patch)
    return Action.RESTORED
