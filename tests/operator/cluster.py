"""What an operator-tier test touches: the API server (a plain HTTP client, as kubectl would be), the
operator process (start, stop, its log), and `eventually` — polling an observable effect to a deadline."""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import stripe

from tollgate.local.gateway import LocalGateway
from tollgate.local.processes import ManagedProcess, free_port, start_process

GROUP_VERSION = "tollgate.dev/v1alpha1"
PLURALS = {
    "SpendPolicy": "spendpolicies",
    "VaultKey": "vaultkeys",
    "SpendApproval": "spendapprovals",
    "SpendBudget": "spendbudgets",
    "Secret": "secrets",
    "Event": "events",
}
REPO = Path(__file__).resolve().parents[2]
# The tests' own requests carry this User-Agent, so the emulator's log tells them from the operator's.
TEST_CLIENT = "tollgate-operator-tests"
T = TypeVar("T")


def eventually(
    check: Callable[[], T | None], *, timeout: float = 30.0, every: float = 0.05, what: str = ""
) -> T:
    """Call `check` until it returns something truthy; fail with the last value or exception at the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except AssertionError as exc:
            value, last = None, exc
        else:
            last = value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not {what or 'true'} within {timeout:g}s; last: {last!r}")
        time.sleep(every)


class Cluster:
    """The emulated API server, spoken to over HTTP like any client would."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10, headers={"User-Agent": TEST_CLIENT})

    def _path(self, kind: str, namespace: str, name: str | None = None) -> str:
        prefix = "/api/v1" if kind in ("Secret", "Event") else f"/apis/{GROUP_VERSION}"
        path = f"{prefix}/namespaces/{namespace}/{PLURALS[kind]}"
        return f"{path}/{name}" if name else path

    def create(self, kind: str, namespace: str, name: str, **fields: Any) -> dict[str, Any]:
        api = "v1" if kind == "Secret" else GROUP_VERSION
        body = {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}, **fields}
        r = self.http.post(self._path(kind, namespace), json=body)
        r.raise_for_status()
        return dict(r.json())

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        r = self.http.get(self._path(kind, namespace, name))
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return dict(r.json())

    def patch(self, kind: str, namespace: str, name: str, changes: dict[str, Any]) -> None:
        headers = {"Content-Type": "application/merge-patch+json"}
        self.http.patch(self._path(kind, namespace, name), json=changes, headers=headers).raise_for_status()

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.http.delete(self._path(kind, namespace, name)).raise_for_status()

    def status(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return dict((self.get(kind, namespace, name) or {}).get("status") or {})

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        secret = self.get("Secret", namespace, name) or {}
        raw = (secret.get("data") or {}).get(key)
        return base64.b64decode(raw).decode() if raw else None

    def events(self, namespace: str, involved: str | None = None) -> list[dict[str, Any]]:
        r = self.http.get(self._path("Event", namespace))
        r.raise_for_status()
        items = r.json().get("items", [])
        return [e for e in items if involved is None or e["involvedObject"]["name"] == involved]

    # Namespaces (cluster-scoped) and NetworkPolicies: what confinement reads and writes.

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
        self.http.post("/api/v1/namespaces", json=body).raise_for_status()

    def label_namespace(self, name: str, labels: dict[str, str | None]) -> None:
        """Merge `labels` into the namespace's (None removes one), as `kubectl label` does."""
        headers = {"Content-Type": "application/merge-patch+json"}
        patch = {"metadata": {"labels": labels}}
        self.http.patch(f"/api/v1/namespaces/{name}", json=patch, headers=headers).raise_for_status()

    def _np(self, namespace: str, name: str = "") -> str:
        path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
        return f"{path}/{name}" if name else path

    def network_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        r = self.http.get(self._np(namespace, name))
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return dict(r.json())

    def network_policies(self, namespace: str) -> list[dict[str, Any]]:
        r = self.http.get(self._np(namespace))
        r.raise_for_status()
        return list(r.json().get("items", []))

    def patch_network_policy(self, namespace: str, name: str, changes: dict[str, Any]) -> None:
        headers = {"Content-Type": "application/merge-patch+json"}
        self.http.patch(self._np(namespace, name), json=changes, headers=headers).raise_for_status()

    def delete_network_policy(self, namespace: str, name: str) -> None:
        self.http.delete(self._np(namespace, name)).raise_for_status()

    def close(self) -> None:
        self.http.close()


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        f"""apiVersion: v1
kind: Config
current-context: emulator
clusters:
- name: emulator
  cluster: {{server: "{server}"}}
contexts:
- name: emulator
  context: {{cluster: emulator, user: tester}}
users:
- name: tester
  user: {{token: test-token}}
"""
    )
    return path


def start_apiserver(log_dir: Path, *, requests_log: Path | None = None) -> ManagedProcess:
    """KMock's Kubernetes emulator in a process of its own; `requests_log`: where it logs every request."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.operator.kube_emulator", f"--port={port}"]
    if requests_log is not None:
        argv.append(f"--requests-log={requests_log}")
    proc = start_process("kube-emulator", argv, ready_port=port, log_dir=log_dir, timeout=30, cwd=REPO)
    proc.url = f"http://127.0.0.1:{port}"
    return proc


def operator_env(
    apiserver: ManagedProcess, gateway: LocalGateway, workdir: Path, **settings: str
) -> dict[str, str]:
    """The operator's environment as the chart wires it: the API server, the gateway's Redis and Fernet key,
    and spend marked by the audit exactly when the gateway runs one (`audit.enabled`); `settings` adds
    TOLLGATE_ variables."""
    assert apiserver.url
    return {
        "KUBECONFIG": str(kubeconfig(workdir / "kubeconfig", apiserver.url)),
        "TOLLGATE_REDIS__URL": gateway.redis_url,
        "TOLLGATE_CREDENTIALS__KEYS": gateway.box_key,
        "TOLLGATE_REDIS__AUDITED": "true" if gateway.options.audit else "false",
        **settings,
    }


class Operator:
    """The operator as its own process, as it runs in the cluster: by default the chart's command line
    (`kopf run --standalone --all-namespaces --liveness=... -m tollgate_operator.handlers`), or with
    `entry="module"` the `python -m tollgate_operator` entry point, which reads the same from settings."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.proc: ManagedProcess | None = None
        self.runs = 0

    def start(self, entry: Literal["kopf", "module"] = "kopf") -> Operator:
        port = free_port()
        self.runs += 1
        liveness = f"http://127.0.0.1:{port}/healthz"
        env = dict(self.env)
        if entry == "kopf":
            argv = ["-m", "kopf", "run", "--standalone", "--all-namespaces", f"--liveness={liveness}"]
            argv += ["-m", "tollgate_operator.handlers"]
        else:
            argv = ["-m", "tollgate_operator"]
            env["TOLLGATE_OPERATOR__LIVENESS_ENDPOINT"] = liveness
        self.proc = start_process(
            f"operator-{self.runs}",
            [sys.executable, *argv],
            env=env,
            ready_port=port,
            log_dir=self.log_dir,
            timeout=60,
            cwd=REPO,
        )
        return self

    def stop(self) -> int | None:
        code = self.proc.stop(grace=10) if self.proc else None
        self.proc = None
        return code

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("operator-*.log")))


def agent(gateway: LocalGateway, token: str) -> stripe.StripeClient:
    """What an agent pod holds: the vault token, and the gateway as Stripe's address."""
    return stripe.StripeClient(
        token, base_addresses={"api": gateway.base_url("stripe")}, max_network_retries=0
    )


def wait_for_token(cluster: Cluster, namespace: str, secret: str, *, other_than: str | None = None) -> str:
    def token() -> str | None:
        value = cluster.secret_value(namespace, secret, "token")
        return value if value != other_than else None

    return eventually(token, what=f"a token in Secret {namespace}/{secret}")


def wait_for_state(cluster: Cluster, kind: str, namespace: str, name: str, state: str) -> dict[str, Any]:
    def status() -> dict[str, Any] | None:
        s = cluster.status(kind, namespace, name)
        return s if s.get("state") == state else None

    return eventually(status, what=f"{kind} {namespace}/{name} in state {state}")
