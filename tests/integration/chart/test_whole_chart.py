"""The chart as a whole: lint, the values schema, every object under every alternative."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from tests.integration.chart.render import (
    ALTERNATIVES,
    CHART,
    CLUSTER_SCOPED,
    KUBERNETES_VERSION,
    NAMESPACE,
    NO_OPENAPI_SCHEMA,
    RELEASE,
    Chart,
    Obj,
    Values,
    containers,
    env_of,
    pod_spec,
    values_schema,
    values_yaml,
    workloads,
)


class TestChart:
    def test_should_pass_helm_lint_strict(self, chart: Chart) -> None:
        done = chart.run("lint", "--strict", str(CHART))
        assert done.returncode == 0, done.stdout + done.stderr

    @pytest.mark.parametrize("alternative", list(ALTERNATIVES), ids=list(ALTERNATIVES))
    def test_should_pass_helm_lint_strict_with_alternative_values(
        self, chart: Chart, alternative: str
    ) -> None:
        done = chart.run(
            "lint", "--strict", str(CHART), "--namespace", NAMESPACE, values=ALTERNATIVES[alternative]
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def test_should_declare_appversion_0_1_0_and_api_v2(self) -> None:
        meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
        assert (meta["apiVersion"], meta["name"], meta["appVersion"]) == ("v2", "tollgate", "0.1.0")

    def test_should_document_every_values_key_with_a_comment_above_it(self) -> None:
        lines = (CHART / "values.yaml").read_text().splitlines()
        undocumented = []
        for number, line in enumerate(lines):
            key = re.match(r"^(\s*)(- )?([\w./\"-]+):( |$)", line)
            # Keys of list items (vendors) are data, documented by their list's comment.
            if not key or key.group(2) or self.inside_list_item(lines[:number], len(key.group(1))):
                continue
            previous = next((p for p in reversed(lines[:number]) if p.strip()), "")
            if not previous.strip().startswith("#"):
                undocumented.append(f"line {number + 1}: {line.strip()}")
        assert not undocumented, "values.yaml keys without a comment above them:\n" + "\n".join(undocumented)

    @staticmethod
    def inside_list_item(before: list[str], indent: int) -> bool:
        for line in reversed(before):
            stripped = line.lstrip()
            if not stripped or stripped.startswith("#"):
                continue
            own = len(line) - len(stripped)
            if own < indent:
                return stripped.startswith("- ") and own + 2 == indent
        return False

    def test_should_reject_unknown_keys_at_every_object_level_of_the_schema(self) -> None:
        loose = []

        def walk(node: Any, path: str) -> None:
            if isinstance(node, dict):
                if node.get("type") == "object" and "additionalProperties" not in node:
                    loose.append(path)
                # `true` is allowed only where Kubernetes' own types pass through (affinity terms), or for
                # Helm's reserved `global`; each such node must say so in a description.
                if node.get("additionalProperties") is True and not (
                    "global" in path or "Affinity" in path or "podAntiAffinity" in path
                ):
                    loose.append(path + " (additionalProperties: true)")
                for key, child in node.items():
                    walk(child, f"{path}.{key}")
            elif isinstance(node, list):
                for index, child in enumerate(node):
                    walk(child, f"{path}[{index}]")

        walk(values_schema(), "$")
        assert not loose, "schema objects that would accept typos: " + ", ".join(loose)

    def test_should_describe_the_same_keys_in_values_yaml_and_the_schema(self) -> None:
        schema = values_schema()
        mismatches = []

        def resolve(node: Obj) -> Obj:
            while "$ref" in node:
                node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
            return node

        def walk(values: Any, node: Obj, path: str) -> None:
            node = resolve(node)
            props = node.get("properties")
            if not isinstance(values, dict) or props is None:
                return
            declared = set(props) - {"global"}
            if path.endswith("affinity"):  # every affinity kind is optional; values.yaml leaves them out
                declared = set()
            if set(values) != declared:
                mismatches.append(f"{path}: values.yaml {sorted(values)} vs schema {sorted(declared)}")
            for key, child in values.items():
                if key in props:
                    walk(child, props[key], f"{path}.{key}")

        walk(values_yaml(), schema, "$")
        assert not mismatches, "\n".join(mismatches)

    def test_should_accept_its_own_default_values_under_its_schema(self) -> None:
        jsonschema.validate(values_yaml(), values_schema())

    def test_should_offer_no_way_to_fail_open(self) -> None:
        text = (CHART / "values.yaml").read_text() + (CHART / "values.schema.json").read_text()
        assert not re.search(r"fail_?open|failOpen|failure_?mode|failureMode", text)

    @pytest.mark.parametrize(
        ("typo", "key"),
        [
            pytest.param({"extauthz": {"replicas": 3}}, "replicas", id="extauthz.replicas for replicaCount"),
            pytest.param(
                {"redis": {"persistance": {"enabled": False}}}, "persistance", id="redis.persistance"
            ),
            pytest.param({"networkPolicy": {"agentNamespace": ["a"]}}, "agentNamespace", id="agentNamespace"),
            pytest.param({"imag": {"tag": "x"}}, "imag", id="top-level imag"),
            pytest.param({"envoy": {"service": {"prot": 80}}}, "prot", id="envoy.service.prot"),
            pytest.param(
                {"extauthz": {"resources": {"request": {"cpu": "1"}}}}, "request", id="resources.request"
            ),
            pytest.param({"vendors": [{"name": "stripe", "ur": "https://x"}]}, "ur", id="vendors[].ur"),
        ],
    )
    def test_should_refuse_a_misspelled_values_key(self, chart: Chart, typo: Values, key: str) -> None:
        assert key in chart.render_error(typo)

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            pytest.param(
                {"redis": {"external": {"url": "redis://r:6379", "existingSecret": "s"}}},
                "not both",
                id="two sources for the external redis",
            ),
            pytest.param(
                {"metrics": {"serviceMonitor": {"enabled": True}}},
                "needs extauthz.metrics.enabled",
                id="service monitor without metrics",
            ),
            pytest.param(
                {"envoy": {"adminPort": 8080}}, "adminPort must differ", id="admin port on the listener"
            ),
            pytest.param(
                {"vendors": [{"name": "stripe", "url": "https://a"}, {"name": "stripe", "url": "https://b"}]},
                "listed twice",
                id="a vendor listed twice",
            ),
            pytest.param({"vendors": []}, "vendors", id="no vendor"),
            pytest.param(
                {"vendors": [{"name": "stripe", "url": "https://api.stripe.com/v1"}]},
                "url",
                id="vendor url with a path",
            ),
            pytest.param(
                {"operator": {"watchNamespaces": ["Team_A"]}}, "watchNamespaces", id="bad namespace name"
            ),
            pytest.param(
                {"redis": {"persistence": {"appendfsync": "no"}}}, "appendfsync", id="appendfsync no"
            ),
            pytest.param(
                {"operator": {"serviceAccount": {"create": False}}},
                "serviceAccount.name",
                id="no service account",
            ),
        ],
    )
    def test_should_refuse_unsafe_or_inconsistent_values(
        self, chart: Chart, values: Values, message: str
    ) -> None:
        assert message in chart.render_error(values)


class TestRenderedObjects:
    @pytest.mark.parametrize("alternative", list(ALTERNATIVES), ids=list(ALTERNATIVES))
    def test_should_validate_every_object_against_the_kubernetes_schemas(
        self, chart: Chart, alternative: str
    ) -> None:
        rendered = chart.render(ALTERNATIVES[alternative])
        problems = []
        for obj in rendered.objects:
            if obj["kind"] in NO_OPENAPI_SCHEMA:
                continue
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                problems.append(f"{obj['kind']} {obj['metadata']['name']}: {where}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                problems.append(exc.message)
        assert not problems, "\n".join(problems)

    @pytest.mark.parametrize("alternative", list(ALTERNATIVES), ids=list(ALTERNATIVES))
    def test_should_label_and_place_every_object(self, chart: Chart, alternative: str) -> None:
        rendered = chart.render(ALTERNATIVES[alternative])
        for obj in rendered.objects:
            if obj["kind"] == "CustomResourceDefinition":
                continue  # copied verbatim from crds/
            labels = obj["metadata"].get("labels", {})
            assert labels.get("app.kubernetes.io/instance") == RELEASE, obj["metadata"]["name"]
            assert labels.get("app.kubernetes.io/part-of") == "tollgate", obj["metadata"]["name"]
            if obj["kind"] not in CLUSTER_SCOPED:
                assert obj["metadata"].get("namespace"), (
                    f"{obj['kind']} {obj['metadata']['name']} has no namespace"
                )

    @pytest.mark.parametrize("alternative", list(ALTERNATIVES), ids=list(ALTERNATIVES))
    def test_should_never_put_a_secret_value_in_plain_env_or_args(
        self, chart: Chart, alternative: str
    ) -> None:
        rendered = chart.render(ALTERNATIVES[alternative])
        secrets = {s for s in rendered.secret_values() if len(s) >= 8}
        secrets.add("hunter2")  # the password inside the external URL of one alternative
        for workload in workloads(rendered):
            for container in containers(workload):
                plain = [e.get("value", "") for e in container.get("env") or []]
                plain += container.get("args") or []
                plain += container.get("command") or []
                for text in plain:
                    leaked = [s for s in secrets if s in str(text)]
                    assert not leaked, (
                        f"{workload['metadata']['name']}/{container['name']} exposes a Secret value"
                    )
                for env_name in ("TOLLGATE_REDIS__URL", "TOLLGATE_CREDENTIALS__KEYS"):
                    if env_name in env_of(container):
                        assert "secretKeyRef" in env_of(container)[env_name].get("valueFrom", {}), env_name

    @pytest.mark.parametrize("alternative", list(ALTERNATIVES), ids=list(ALTERNATIVES))
    def test_should_run_every_container_unprivileged_with_a_read_only_root(
        self, chart: Chart, alternative: str
    ) -> None:
        for workload in workloads(chart.render(ALTERNATIVES[alternative])):
            spec = pod_spec(workload) if workload["kind"] != "Pod" else workload["spec"]
            assert spec["securityContext"]["runAsNonRoot"] is True
            for container in containers(workload):
                ctx = container["securityContext"]
                assert ctx["readOnlyRootFilesystem"] is True
                assert ctx["allowPrivilegeEscalation"] is False
                assert ctx["capabilities"]["drop"] == ["ALL"]
