"""Confinement's rules without an API server: which namespaces are agents', and what reconcile does to
a missing, tampered, foreign or stale policy (a fake NetworkPolicies store that applies merge patches
as the API server does)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tollgate_operator.confinement import (
    Action,
    ConfinementSettings,
    desired_policy,
    is_agent_namespace,
    reconcile_namespace,
    restoring_patch,
)

SETTINGS = ConfinementSettings(
    namespace_labels={"tollgate.dev/agents": "enabled"},
    namespaces=["listed"],
    policy_name="egress",
    agent_pod_labels={"tollgate.dev/agent": "true"},
    envoy_namespace="tollgate",
    envoy_pod_labels={"app.kubernetes.io/component": "envoy"},
    envoy_port=8080,
)
AGENTS = {"tollgate.dev/agents": "enabled"}


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


class FakePolicies:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[str] = []

    async def get_network_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((namespace, name))
        return copy.deepcopy(found) if found else None

    async def create_network_policy(self, namespace: str, body: dict[str, Any]) -> None:
        self.calls.append("create")
        self.objects[(namespace, body["metadata"]["name"])] = copy.deepcopy(body)

    async def patch_network_policy(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append("patch")
        self.objects[(namespace, name)] = merge(self.objects[(namespace, name)], patch)

    async def delete_network_policy(self, namespace: str, name: str) -> None:
        self.calls.append("delete")
        del self.objects[(namespace, name)]


@pytest.mark.parametrize(
    ("name", "labels", "agent"),
    [
        ("a", AGENTS, True),
        ("listed", {}, True),
        ("a", {"tollgate.dev/agents": "disabled"}, False),
        ("a", {}, False),
    ],
)
def test_a_namespace_is_an_agent_namespace_by_label_or_by_name(
    name: str, labels: dict[str, str], agent: bool
) -> None:
    assert is_agent_namespace(name, labels, SETTINGS) is agent


def test_no_label_selector_means_only_listed_namespaces() -> None:
    settings = SETTINGS.model_copy(update={"namespace_labels": {}})
    assert not is_agent_namespace("a", AGENTS, settings)
    assert not is_agent_namespace("a", {}, settings)


def test_the_restoring_patch_nulls_what_was_added_and_replaces_what_was_changed() -> None:
    desired = {"spec": {"podSelector": {"matchLabels": {"a": "1"}}, "egress": [1]}}
    current = {"spec": {"podSelector": {"matchLabels": {"a": "1"}, "matchExpressions": []}, "egress": [1, 2]}}
    current["spec"]["ingress"] = [{}]
    patch = restoring_patch(current, desired)
    assert patch == {"spec": {"podSelector": {"matchExpressions": None}, "egress": [1], "ingress": None}}
    assert merge(current, patch) == desired
    assert restoring_patch(desired, desired) == {}


async def test_a_labelled_namespace_gets_the_policy_once() -> None:
    api = FakePolicies()
    assert await reconcile_namespace(api, "a", AGENTS, SETTINGS) is Action.CREATED
    assert await reconcile_namespace(api, "a", AGENTS, SETTINGS) is Action.KEPT
    assert api.calls == ["create"]
    assert api.objects[("a", "egress")] == desired_policy("a", SETTINGS)


async def test_an_edited_policy_is_restored_but_labels_others_added_are_kept() -> None:
    api = FakePolicies()
    await reconcile_namespace(api, "a", AGENTS, SETTINGS)
    policy = api.objects[("a", "egress")]
    policy["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})
    policy["spec"]["podSelector"] = {}
    policy["metadata"]["labels"]["team"] = "web"
    assert await reconcile_namespace(api, "a", AGENTS, SETTINGS) is Action.RESTORED
    restored = api.objects[("a", "egress")]
    assert restored["spec"] == desired_policy("a", SETTINGS)["spec"]
    assert restored["metadata"]["labels"]["team"] == "web"


async def test_unlabelling_removes_only_a_policy_tollgate_wrote() -> None:
    api = FakePolicies()
    await reconcile_namespace(api, "a", AGENTS, SETTINGS)
    assert await reconcile_namespace(api, "a", {}, SETTINGS) is Action.REMOVED
    assert ("a", "egress") not in api.objects
    foreign = {"metadata": {"name": "egress", "labels": {}}, "spec": {"podSelector": {}}}
    api.objects[("b", "egress")] = foreign
    assert await reconcile_namespace(api, "b", {}, SETTINGS) is Action.NONE
    assert ("b", "egress") in api.objects
