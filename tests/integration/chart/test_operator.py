"""The operator Deployment and its RBAC."""

from __future__ import annotations

import json

import pytest
from tests.integration.chart.render import (
    ALTERNATIVES,
    NAMESPACE,
    Chart,
    Obj,
    Rendered,
    env_of,
    name,
    pod_spec,
)


def rules_of(rendered: Rendered) -> list[Obj]:
    return [
        rule for kind in ("ClusterRole", "Role") for role in rendered.of_kind(kind) for rule in role["rules"]
    ]


class TestOperatorDeployment:
    def container(self, rendered: Rendered) -> Obj:
        (container,) = pod_spec(rendered.get("Deployment", name("operator")))["containers"]
        return container

    def test_should_run_one_standalone_kopf_across_all_namespaces_by_default(self, default: Rendered) -> None:
        deployment = default.get("Deployment", name("operator"))
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        container = self.container(default)
        assert container["command"] == ["kopf", "run"]
        assert container["args"] == [
            "--standalone",
            "--all-namespaces",
            "--liveness=http://0.0.0.0:8080/healthz",
            "-m",
            "tollgate_operator.handlers",
        ]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}

    def test_should_watch_only_the_listed_namespaces_when_given(self, chart: Chart) -> None:
        container = self.container(chart.render(ALTERNATIVES["namespaced operator"]))
        assert "--all-namespaces" not in container["args"]
        assert [a for a in container["args"] if a.startswith("--namespace=")] == [
            "--namespace=team-a",
            "--namespace=team-b",
        ]
        assert json.loads(env_of(container)["TOLLGATE_OPERATOR__NAMESPACES"]["value"]) == ["team-a", "team-b"]

    def test_should_open_the_same_store_as_extauthz(self, default: Rendered) -> None:
        env = env_of(self.container(default))
        (extauthz,) = pod_spec(default.get("Deployment", name("extauthz")))["containers"]
        for var in ("TOLLGATE_REDIS__URL", "TOLLGATE_CREDENTIALS__KEYS"):
            assert env[var] == env_of(extauthz)[var]

    def test_should_use_its_own_service_account(self, default: Rendered) -> None:
        spec = pod_spec(default.get("Deployment", name("operator")))
        assert spec["serviceAccountName"] == name("operator")
        default.get("ServiceAccount", name("operator"))


class TestOperatorRbac:
    @pytest.mark.parametrize("alternative", ["defaults", "namespaced operator"])
    def test_should_grant_no_wildcard_verbs_resources_or_groups(self, chart: Chart, alternative: str) -> None:
        for rule in rules_of(chart.render(ALTERNATIVES[alternative])):
            for field in ("verbs", "resources", "apiGroups"):
                assert "*" not in rule.get(field, []), rule

    def test_should_grant_exactly_what_the_operator_does(self, default: Rendered) -> None:
        grants = {
            (group, resource, verb)
            for rule in rules_of(default)
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }
        expected = {
            *(
                ("tollgate.dev", r, v)
                for r in ("spendpolicies", "vaultkeys", "spendbudgets")
                for v in ("list", "watch", "patch")
            ),
            *(
                ("tollgate.dev", f"{r}/status", "patch")
                for r in ("spendpolicies", "vaultkeys", "spendbudgets")
            ),
            ("tollgate.dev", "vaultkeys/finalizers", "update"),
            *(("tollgate.dev", "spendapprovals", v) for v in ("list", "watch", "create", "delete")),
            ("tollgate.dev", "spendapprovals/status", "patch"),
            *(("", "secrets", v) for v in ("get", "list", "watch", "create", "patch")),
            ("", "events", "create"),
            *(("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")),
            *(("", "namespaces", v) for v in ("list", "watch")),
            *(
                ("networking.k8s.io", "networkpolicies", v)
                for v in ("get", "list", "watch", "create", "patch", "delete")
            ),
        }
        assert grants == expected

    def test_should_bind_a_cluster_role_to_the_operator_when_watching_everything(
        self, default: Rendered
    ) -> None:
        (binding,) = default.of_kind("ClusterRoleBinding")
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": name("operator"), "namespace": NAMESPACE}
        ]
        assert default.of_kind("Role") == []

    def test_should_confine_secret_access_to_watched_namespaces_with_roles(self, chart: Chart) -> None:
        rendered = chart.render(ALTERNATIVES["namespaced operator"])
        roles = rendered.of_kind("Role")
        assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
        assert sorted(b["metadata"]["namespace"] for b in rendered.of_kind("RoleBinding")) == [
            "team-a",
            "team-b",
        ]
        (cluster_role,) = rendered.of_kind("ClusterRole")
        cluster_resources = {r for rule in cluster_role["rules"] for r in rule["resources"]}
        assert cluster_resources == {"customresourcedefinitions", "namespaces"}
        for rule in cluster_role["rules"]:
            assert set(rule["verbs"]) == {"list", "watch"}
