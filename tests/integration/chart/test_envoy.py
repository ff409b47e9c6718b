"""The Envoy Deployment, its Service and the config its init container renders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.integration.chart.render import (
    ALTERNATIVES,
    NAMESPACE,
    RELEASE,
    Chart,
    Obj,
    Rendered,
    flag_values,
    name,
    pod_spec,
)

from tollgate.local.processes import envoy_validate


class TestEnvoyDeployment:
    def render_container(self, rendered: Rendered, fullname: str = RELEASE) -> Obj:
        init = pod_spec(rendered.get("Deployment", name("envoy", fullname)))["initContainers"]
        assert [c["name"] for c in init] == ["render-config"]
        container: Obj = init[0]
        return container

    def test_should_render_the_config_with_tollgate_envoy_render_in_an_init_container(
        self, default: Rendered
    ) -> None:
        init = self.render_container(default)
        assert init["image"] == "ghcr.io/tollgate-dev/tollgate:0.1.0"
        assert init["command"] == ["tollgate", "envoy", "render"]
        args = init["args"]
        assert flag_values(args, "--extauthz") == [f"tg-extauthz.{NAMESPACE}.svc.cluster.local:9001"]
        assert flag_values(args, "--vendor") == ["stripe=https://api.stripe.com"]
        assert flag_values(args, "--listen-port") == ["8080"]
        assert flag_values(args, "--admin-port") == ["9901"]
        assert flag_values(args, "--max-request-bytes") == ["1048576"]
        assert flag_values(args, "--request-timeout-s") == ["60"]
        assert flag_values(args, "--out") == ["/etc/envoy/envoy.yaml"]

    def test_should_pass_the_body_limit_and_request_timeout_from_values(self, chart: Chart) -> None:
        rendered = chart.render({"envoy": {"maxRequestBytes": 10485760, "requestTimeoutSeconds": 30}})
        args = self.render_container(rendered)["args"]
        assert flag_values(args, "--max-request-bytes") == ["10485760"]
        assert flag_values(args, "--request-timeout-s") == ["30"]

    def test_should_pass_one_vendor_flag_per_listed_vendor(self, chart: Chart) -> None:
        rendered = chart.render(ALTERNATIVES["several vendors, no persistence, one replica"])
        assert flag_values(self.render_container(rendered)["args"], "--vendor") == [
            "stripe=https://api.stripe.com",
            "sandbox=http://localstripe.dev.svc:8420",
        ]

    @pytest.mark.parametrize("alternative", ["defaults", "several vendors, no persistence, one replica"])
    def test_should_produce_a_config_envoy_accepts_when_its_init_args_are_run_here(
        self, chart: Chart, alternative: str, tmp_path: Path
    ) -> None:
        init = self.render_container(chart.render(ALTERNATIVES[alternative]))
        args = list(init["args"])
        out = tmp_path / "envoy.yaml"
        args[args.index("--out") + 1] = str(out)
        if "--access-log-path" in args:  # the Pod's shared emptyDir; here, a file Envoy can open
            assert args[args.index("--access-log-path") + 1] == "/var/log/tollgate/access.log"
            args[args.index("--access-log-path") + 1] = str(tmp_path / "access.log")
        tollgate = Path(sys.executable).parent / "tollgate"
        done = subprocess.run(
            [str(tollgate), *init["command"][1:], *args], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        envoy_validate(out)
        config = yaml.safe_load(out.read_text())
        listener = config["static_resources"]["listeners"][0]
        assert listener["address"]["socket_address"]["port_value"] == 8080
        assert config["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 9901}
        # The chart cannot turn fail-closed off: the renderer's ext_authz filter never allows on failure.
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        extauthz = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.ext_authz")
        assert extauthz["typed_config"]["failure_mode_allow"] is False
        # Envoy's own answers are worded in the vendors' error JSON in the cluster too.
        assert hcm["local_reply_config"]["mappers"]

    def test_should_run_the_official_envoy_image_on_the_rendered_file(self, default: Rendered) -> None:
        containers = {c["name"]: c for c in pod_spec(default.get("Deployment", name("envoy")))["containers"]}
        assert sorted(containers) == ["audit", "envoy"]
        envoy = containers["envoy"]
        assert envoy["image"] == "envoyproxy/envoy:v1.40.0"
        assert envoy["command"] == ["envoy"]
        assert envoy["args"][:4] == ["-c", "/etc/envoy/envoy.yaml", "--file-flush-interval-msec", "100"]
        mounts = {m["mountPath"]: m for m in envoy["volumeMounts"]}
        assert mounts["/etc/envoy"]["readOnly"] is True
        volumes = {v["name"]: v for v in pod_spec(default.get("Deployment", name("envoy")))["volumes"]}
        assert "emptyDir" in volumes[mounts["/etc/envoy"]["name"]]

    def test_should_probe_the_agent_listener_since_the_admin_port_is_loopback_only(
        self, default: Rendered
    ) -> None:
        envoy = pod_spec(default.get("Deployment", name("envoy")))["containers"][0]
        assert envoy["name"] == "envoy"
        assert envoy["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert envoy["readinessProbe"]["tcpSocket"]["port"] == "http"
        assert envoy["livenessProbe"]["tcpSocket"]["port"] == "http"

    def test_should_run_two_replicas_spread_over_nodes(self, default: Rendered) -> None:
        deployment = default.get("Deployment", name("envoy"))
        assert deployment["spec"]["replicas"] == 2
        anti = pod_spec(deployment)["affinity"]["podAntiAffinity"]
        assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"][
            "topologyKey"
        ] == ("kubernetes.io/hostname")


class TestEnvoyService:
    def test_should_expose_port_8080_where_agents_point_their_sdk(self, default: Rendered) -> None:
        service = default.get("Service", name("envoy"))
        assert service["spec"]["type"] == "ClusterIP"
        assert service["spec"]["ports"][0] == (
            {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}
        )
        # The only other port is the audit sidecar's metrics, which the NetworkPolicy keeps from agents.
        assert [p["name"] for p in service["spec"]["ports"][1:]] == ["audit-metrics"]
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == "envoy"


class TestEnvoyPdb:
    def test_should_keep_one_envoy_up_through_voluntary_disruptions(self, default: Rendered) -> None:
        pdb = default.get("PodDisruptionBudget", name("envoy"))
        assert pdb["spec"]["minAvailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "envoy"

    def test_should_be_absent_when_disabled(self, chart: Chart) -> None:
        rendered = chart.render(ALTERNATIVES["several vendors, no persistence, one replica"])
        assert rendered.of_kind("PodDisruptionBudget") == []
