"""Every Pod the chart runs, under every alternative set of values: the restricted Pod Security
Standard (non-root, seccomp RuntimeDefault, no privilege escalation, every capability dropped), a
read-only root filesystem, CPU and memory requests and a memory limit on every container, and no
service-account token except in the operator, the one Pod that talks to the Kubernetes API."""

from __future__ import annotations

import pytest
from tests.integration.chart.render import ALTERNATIVES, Chart, containers, name, workloads

NEEDS_API = {name("operator"), name("operator", "gate")}


def pod_of(workload: dict) -> dict:
    spec: dict = workload["spec"]["template"]["spec"] if workload["kind"] != "Pod" else workload["spec"]
    return spec


@pytest.mark.parametrize("alternative", list(ALTERNATIVES), ids=list(ALTERNATIVES))
def test_every_pod_meets_the_restricted_standard(chart: Chart, alternative: str) -> None:
    for workload in workloads(chart.render(ALTERNATIVES[alternative])):
        spec = pod_of(workload)
        who = workload["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, who
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, who
        for container in containers(workload):
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, (who, container["name"])
            assert ctx["capabilities"]["drop"] == ["ALL"], (who, container["name"])
            assert ctx["readOnlyRootFilesystem"] is True, (who, container["name"])
            assert "privileged" not in ctx or ctx["privileged"] is False


@pytest.mark.parametrize("alternative", list(ALTERNATIVES), ids=list(ALTERNATIVES))
def test_every_container_has_requests_and_a_memory_limit(chart: Chart, alternative: str) -> None:
    for workload in workloads(chart.render(ALTERNATIVES[alternative])):
        for container in containers(workload):
            resources = container["resources"]
            who = (workload["metadata"]["name"], container["name"])
            assert {"cpu", "memory"} <= set(resources["requests"]), who
            assert "memory" in resources["limits"], who


@pytest.mark.parametrize("alternative", list(ALTERNATIVES), ids=list(ALTERNATIVES))
def test_only_the_operator_mounts_a_service_account_token(chart: Chart, alternative: str) -> None:
    for workload in workloads(chart.render(ALTERNATIVES[alternative])):
        spec = pod_of(workload)
        mounts = spec.get("automountServiceAccountToken", True)
        assert mounts is (workload["metadata"]["name"] in NEEDS_API), workload["metadata"]["name"]
