"""Rendering the Helm chart (charts/tollgate) with a real helm v4, and the helpers every chart suite in
this folder shares: one suite per template, each test named after what the chart should do
(cert-manager's per-component chart suites).

helm and kubectl come from a PyPI wheel (tests/support/kubetools.py). Rendered objects are checked
against the Kubernetes 1.35 OpenAPI schemas with kubernetes-validate (strict: unknown fields fail), and
the Envoy config the init container would write is rendered here by the same `tollgate envoy render`
and handed to `envoy --mode validate`.

`kubectl apply --dry-run=client` is not run without a cluster: even client-side dry-run asks the API
server's discovery to map each kind to a resource, and fails with "unable to recognize … /api" when
there is none (checked with kubectl 1.35 and --validate=false). The kind tier (`make e2e-kind`) installs
the chart in a real cluster instead.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "tollgate"
RELEASE = "tg"
NAMESPACE = "tollgate"
KUBERNETES_VERSION = "1.35.0"
# Validated elsewhere or not at all: the Prometheus Operator's CRD schema is not available here.
NO_OPENAPI_SCHEMA = {"ServiceMonitor"}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace"}

Obj = dict[str, Any]
Values = dict[str, Any]

# The alternatives every rendered object is validated under, beside the defaults.
ALTERNATIVES: dict[str, Values] = {
    "defaults": {},
    "external redis": {"redis": {"external": {"url": "rediss://:hunter2@redis.example:6380/0"}}},
    "existing secrets": {
        "credentials": {"existingSecret": "fernet", "existingSecretKey": "k"},
        "redis": {"external": {"existingSecret": "redis-conn", "existingSecretKey": "u"}},
    },
    "namespaced operator": {"operator": {"watchNamespaces": ["team-a", "team-b"]}},
    "several agent namespaces": {"networkPolicy": {"agentNamespaces": ["agents-a", "agents-b", "agents-c"]}},
    "service monitor": {
        "extauthz": {"metrics": {"enabled": True}},
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
        "networkPolicy": {
            "metricsFrom": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
            ]
        },
    },
    "several vendors, no persistence, one replica": {
        "vendors": [
            {"name": "stripe", "url": "https://api.stripe.com"},
            {"name": "sandbox", "url": "http://localstripe.dev.svc:8420"},
        ],
        "redis": {"persistence": {"enabled": False}},
        "extauthz": {"replicaCount": 1, "pdb": {"enabled": False}},
        "envoy": {"replicaCount": 1, "pdb": {"enabled": False}},
    },
    "audit on postgresql, alerts to slack": {
        "audit": {"database": {"existingSecret": "audit-db", "egressCidrs": ["10.0.0.0/8"]}},
        "alerts": {"slackWebhook": {"existingSecret": "slack-webhook", "existingSecretKey": "webhook"}},
    },
    "audit database url in values": {
        "audit": {"database": {"url": "postgresql+psycopg://tollgate:s3cret-pw@db.example:5432/audit"}}
    },
    "audit off": {"audit": {"enabled": False}},
    "network policies off, agent pods unlabelled": {
        "networkPolicy": {"enabled": False, "agentPodLabels": None},
        "fullnameOverride": "gate",
    },
}


# --- rendering ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    objects: tuple[Obj, ...]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str, namespace: str = NAMESPACE) -> Obj:
        for o in self.objects:
            meta = o["metadata"]
            if o["kind"] == kind and meta["name"] == name and meta.get("namespace", namespace) == namespace:
                return o
        raise AssertionError(f"no {kind} {namespace}/{name}; rendered: {sorted(kinds_and_names(self))}")

    def find(self, kind: str, name: str, namespace: str = NAMESPACE) -> Obj | None:
        try:
            return self.get(kind, name, namespace)
        except AssertionError:
            return None

    def secret_values(self) -> set[str]:
        found: set[str] = set()
        for secret in self.of_kind("Secret"):
            for value in (secret.get("data") or {}).values():
                found.add(base64.b64decode(value).decode())
            found.update((secret.get("stringData") or {}).values())
        return found


def kinds_and_names(rendered: Rendered) -> Iterator[str]:
    for o in rendered.objects:
        yield f"{o['kind']} {o['metadata'].get('namespace', '-')}/{o['metadata']['name']}"


class Chart:
    """Runs helm on the chart; renders are cached per set of values (helm template is pure without a
    cluster, apart from the random Secrets, which no test compares across renders)."""

    def __init__(self, helm: Path, workdir: Path) -> None:
        self.helm = helm
        self.workdir = workdir
        self._rendered: dict[str, Rendered] = {}

    def run(self, *args: str, values: Values | None = None) -> subprocess.CompletedProcess[str]:
        argv = [str(self.helm), *args]
        if values is not None:
            digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
            path = self.workdir / f"values-{digest}.yaml"
            path.write_text(yaml.safe_dump(values))
            argv += ["--values", str(path)]
        env = {**os.environ, "HELM_CACHE_HOME": str(self.workdir / "helm-cache")}
        env.update(
            HELM_CONFIG_HOME=str(self.workdir / "helm-config"), HELM_DATA_HOME=str(self.workdir / "helm-data")
        )
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL
        )

    def template_argv(self) -> list[str]:
        return ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds"]

    def render(self, values: Values | None = None) -> Rendered:
        key = json.dumps(values or {}, sort_keys=True)
        if key not in self._rendered:
            done = self.run(*self.template_argv(), values=values or {})
            assert done.returncode == 0, f"helm template failed:\n{done.stderr}"
            self._rendered[key] = Rendered(tuple(o for o in yaml.safe_load_all(done.stdout) if o))
        return self._rendered[key]

    def render_error(self, values: Values) -> str:
        done = self.run(*self.template_argv(), values=values)
        assert done.returncode != 0, "helm template accepted values it should have refused"
        return done.stderr


def merged(base: Values, extra: Values) -> Values:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def name(component: str, fullname: str = RELEASE) -> str:
    return f"{fullname}-{component}"


def containers(workload: Obj) -> list[Obj]:
    """Init containers and containers of a Deployment, StatefulSet or Pod."""
    spec = workload["spec"]["template"]["spec"] if "template" in workload["spec"] else workload["spec"]
    return [*(spec.get("initContainers") or []), *spec["containers"]]


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def env_of(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env") or []}


def flag_values(args: list[str], flag: str) -> list[str]:
    """Values of a repeatable `--flag value` in an argv."""
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


def workloads(rendered: Rendered) -> list[Obj]:
    return [o for o in rendered.objects if o["kind"] in ("Deployment", "StatefulSet", "Pod")]


def values_yaml() -> Values:
    loaded: Values = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def values_schema() -> Obj:
    loaded: Obj = json.loads((CHART / "values.schema.json").read_text())
    return loaded


def install_notes(chart: Chart, values: Values) -> str:
    """NOTES.txt as an install prints it: `helm template` skips it, a client-side dry-run install renders it
    with no cluster."""
    done = chart.run(
        "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", values=values
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split("NOTES:", 1)[1]
