"""The chart's RBAC for the operator, held against what the operator process really asked the API server
for: every request it made (in this test's own round of changes, and in any operator test run before
it) is allowed by the ClusterRole the chart renders, and the chart grants nothing beyond that except
the rules a real API server needs that an emulator never asks about."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import redis
import yaml
from tests.operator.cluster import REPO, TEST_CLIENT, Cluster, eventually, wait_for_state, wait_for_token
from tests.operator.conftest import CONFINEMENT
from tests.support.ci import required
from tests.support.kubetools import ToolUnavailable, helm_binary

from tollgate.store import keys

# Granted although no request of the operator's shows it:
JUSTIFIED = {
    # the OwnerReferencesPermissionEnforcement admission plugin checks this for the token Secrets'
    # owner references (blockOwnerDeletion); it is an authorization check, not a request
    ("tollgate.dev", "vaultkeys/finalizers", "update"),
}
# What one round of changes must show, so the comparison is never made against an empty log.
EXERCISED = {
    ("tollgate.dev", "vaultkeys", "watch"),
    ("tollgate.dev", "vaultkeys", "patch"),
    ("tollgate.dev", "vaultkeys/status", "patch"),
    ("tollgate.dev", "spendpolicies/status", "patch"),
    ("tollgate.dev", "spendbudgets", "watch"),
    ("tollgate.dev", "spendbudgets/status", "patch"),
    ("", "secrets", "watch"),
    ("", "secrets", "get"),
    ("", "secrets", "create"),
    ("", "secrets", "patch"),
    ("", "events", "create"),
    ("", "namespaces", "watch"),
    *(("tollgate.dev", "spendapprovals", v) for v in ("list", "watch", "create", "delete")),
    ("tollgate.dev", "spendapprovals/status", "patch"),
    *(("networking.k8s.io", "networkpolicies", v) for v in ("watch", "get", "create", "patch", "delete")),
}


class Access(NamedTuple):
    group: str
    resource: str  # with its subresource: "vaultkeys/status"
    verb: str


def access(method: str, path: str, query: dict[str, str]) -> Access | None:
    """The RBAC (group, resource, verb) a request needs; None for discovery and other non-resource paths."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]  # a namespaced resource; namespaces themselves are cluster-scoped below
    if not rest:
        return None
    resource, name, sub = [*rest, None, None][:3]
    assert resource
    verbs = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
    if method == "GET":
        verb = "get" if name else "watch" if query.get("watch") in ("true", "1") else "list"
    else:
        verb = verbs[method]
    return Access(group, f"{resource}/{sub}" if sub else resource, verb)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def operator_accesses(log: Path) -> set[Access]:
    found = set()
    for line in log.read_text().splitlines():
        request = json.loads(line)
        if request["agent"] != TEST_CLIENT and (
            a := access(request["method"], request["path"], request["query"])
        ):
            found.add(a)
    return found


@pytest.fixture(scope="module")
def chart_grants(tmp_path_factory: pytest.TempPathFactory) -> set[Access]:
    """(group, resource, verb) of every rule in the chart's operator Roles, default values."""
    with required("helm", ToolUnavailable):
        helm = helm_binary()
    work = tmp_path_factory.mktemp("helm")
    env = {**os.environ, **{f"HELM_{d}_HOME": str(work / d.lower()) for d in ("CACHE", "CONFIG", "DATA")}}
    argv = [str(helm), "template", "tollgate", str(REPO / "charts" / "tollgate"), "--namespace", "tollgate"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    roles = [o for o in yaml.safe_load_all(done.stdout) if o and o["kind"] in ("ClusterRole", "Role")]
    return {
        Access(group, resource, verb)
        for role in roles
        if "operator" in role["metadata"]["name"]
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.fixture
def round_of_changes(cluster: Cluster, namespace: str, redis_client: redis.Redis) -> Iterator[None]:
    """Create, rotate, change the vendor key of, and delete one VaultKey, and see one approval through
    its SpendApproval's life: every kind of write the operator makes."""
    approval_round(cluster, namespace, redis_client)
    cluster.create("Secret", namespace, "stripe-key", type="Opaque", data={"api-key": b64("sk_test_one")})
    cluster.create("SpendBudget", namespace, "team", spec={"dailyCapUsd": "50"})
    cluster.create(
        "SpendPolicy",
        namespace,
        "p",
        spec={
            "vendor": "stripe",
            "dailyCapUsd": "5",
            "allow": ["GET /v1/charges"],
            "budgetRef": {"name": "team"},
        },
    )
    key = {"policyRef": {"name": "p"}, "vendorKeySecretRef": {"name": "stripe-key", "key": "api-key"}}
    cluster.create("VaultKey", namespace, "bot", spec=key)
    first = wait_for_token(cluster, namespace, "bot-vault-token")
    wait_for_state(cluster, "VaultKey", namespace, "bot", "Ready")
    wait_for_state(cluster, "SpendBudget", namespace, "team", "Ready")
    cluster.patch("VaultKey", namespace, "bot", {"spec": {"tokenRotation": "2"}})
    wait_for_token(cluster, namespace, "bot-vault-token", other_than=first)
    cluster.patch("Secret", namespace, "stripe-key", {"data": {"api-key": b64("sk_test_two")}})
    eventually(
        lambda: "VendorKeyChanged" in {e["reason"] for e in cluster.events(namespace, "bot")},
        what="the vendor-key change handled",
    )
    cluster.delete("VaultKey", namespace, "bot")
    eventually(lambda: cluster.get("VaultKey", namespace, "bot") is None, what="the VaultKey gone")
    confine_and_release(cluster, namespace)
    yield


def approval_round(cluster: Cluster, namespace: str, redis_client: redis.Redis) -> None:
    """An approval already past its expiry, as ext_authz's commit.lua writes one: mirrored (created, its
    status patched Expired), then forgotten by Redis, and its object deleted."""
    aid, key_id, now_ms = "apr-" + "0" * 20, f"{namespace}/bot", int(time.time() * 1000)
    record = keys.approval(key_id, aid)
    fields = {"state": "pending", "fp": "fp:1", "cost": 1, "created_ms": now_ms - 2, "expires_ms": now_ms - 1}
    redis_client.hset(record, mapping={**fields, "ttl_ms": 1, "details": "{}"})
    redis_client.hset(keys.approvals_index(), aid, key_id)
    eventually(
        lambda: cluster.status("SpendApproval", namespace, aid).get("state") == "Expired",
        what="the SpendApproval mirrored, expired",
    )
    redis_client.delete(record)
    eventually(lambda: cluster.get("SpendApproval", namespace, aid) is None, what="the SpendApproval gone")


def confine_and_release(cluster: Cluster, namespace: str) -> None:
    """Label the namespace, widen and delete its egress policy, unlabel it: every confinement write."""
    policy = str(CONFINEMENT["policy_name"])
    cluster.create_namespace(namespace, {"tollgate.dev/agents": "enabled"})
    eventually(lambda: cluster.network_policy(namespace, policy), what="the egress policy created")
    cluster.patch_network_policy(namespace, policy, {"spec": {"ingress": [{}]}})
    eventually(
        lambda: "ingress" not in (cluster.network_policy(namespace, policy) or {"ingress": 1})["spec"],
        what="the egress policy restored",
    )
    cluster.delete_network_policy(namespace, policy)
    eventually(lambda: cluster.network_policy(namespace, policy), what="the egress policy recreated")
    cluster.label_namespace(namespace, {"tollgate.dev/agents": None})
    eventually(lambda: cluster.network_policy(namespace, policy) is None, what="the egress policy removed")


def test_the_chart_grants_the_operator_exactly_what_it_uses(
    round_of_changes: None, api_requests: Path, chart_grants: set[Access]
) -> None:
    def logged() -> set[Access] | None:
        found = operator_accesses(api_requests)
        return found if found >= EXERCISED else None

    used = eventually(logged, what="every kind of request in the emulator's log")
    assert used - chart_grants == set(), "requests the chart's RBAC would refuse"
    assert chart_grants - used - JUSTIFIED == set(), "granted but never used"
