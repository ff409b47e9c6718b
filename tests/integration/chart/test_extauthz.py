"""The ext_authz Deployment and Service."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from tests.integration.chart.render import ALTERNATIVES, Chart, Obj, Rendered, env_of, name, pod_spec


class TestExtauthzDeployment:
    def container(self, rendered: Rendered) -> Obj:
        (container,) = pod_spec(rendered.get("Deployment", name("extauthz")))["containers"]
        return container

    def test_should_run_two_replicas_of_python_m_tollgate_extauthz(self, default: Rendered) -> None:
        deployment = default.get("Deployment", name("extauthz"))
        assert deployment["spec"]["replicas"] == 2
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert self.container(default)["command"] == ["python", "-m", "tollgate_extauthz"]

    def test_should_use_grpc_health_probes_on_the_authz_port(self, default: Rendered) -> None:
        container = self.container(default)
        assert container["readinessProbe"]["grpc"] == {
            "port": 9001,
            "service": "envoy.service.auth.v3.Authorization",
        }
        assert container["livenessProbe"]["grpc"] == {"port": 9001}

    def test_should_configure_the_process_through_tollgate_settings_env(self, default: Rendered) -> None:
        env = env_of(self.container(default))
        assert env["TOLLGATE_EXTAUTHZ__HOST"]["value"] == "0.0.0.0"
        assert env["TOLLGATE_EXTAUTHZ__PORT"]["value"] == "9001"
        assert json.loads(env["TOLLGATE_EXTAUTHZ__VENDOR_URLS"]["value"]) == {
            "stripe": "https://api.stripe.com"
        }
        assert env["TOLLGATE_REDIS__URL"]["valueFrom"]["secretKeyRef"] == {"name": "tg-redis", "key": "url"}
        assert env["TOLLGATE_CREDENTIALS__KEYS"]["valueFrom"]["secretKeyRef"] == {
            "name": "tg-credentials",
            "key": "keys",
        }
        assert "TOLLGATE_EXTAUTHZ__METRICS_PORT" not in env

    def test_should_be_parsed_by_tollgate_settings_as_the_app_expects(
        self, default: Rendered, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from tollgate.settings import Settings

        for var, entry in env_of(self.container(default)).items():
            monkeypatch.setenv(var, entry.get("value", "from-a-secret"))
        monkeypatch.setenv("TOLLGATE_CREDENTIALS__KEYS", Fernet.generate_key().decode())
        settings = Settings()
        assert (settings.extauthz.host, settings.extauthz.port) == ("0.0.0.0", 9001)
        assert settings.extauthz.vendor_urls == {"stripe": "https://api.stripe.com"}

    def test_should_take_credentials_and_redis_from_existing_secrets_when_named(self, chart: Chart) -> None:
        rendered = chart.render(ALTERNATIVES["existing secrets"])
        env = env_of(self.container(rendered))
        assert env["TOLLGATE_REDIS__URL"]["valueFrom"]["secretKeyRef"] == {"name": "redis-conn", "key": "u"}
        assert env["TOLLGATE_CREDENTIALS__KEYS"]["valueFrom"]["secretKeyRef"] == {
            "name": "fernet",
            "key": "k",
        }
        assert rendered.of_kind("Secret") == []

    def test_should_expose_the_metrics_port_only_when_enabled(self, chart: Chart) -> None:
        container = self.container(chart.render(ALTERNATIVES["service monitor"]))
        assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
        assert env_of(container)["TOLLGATE_EXTAUTHZ__METRICS_PORT"]["value"] == "9090"


class TestExtauthzService:
    def test_should_be_headless_so_envoy_balances_over_every_pod(self, default: Rendered) -> None:
        service = default.get("Service", name("extauthz"))
        assert service["spec"]["clusterIP"] == "None"
        assert [p["port"] for p in service["spec"]["ports"]] == [9001]


class TestExtauthzPdb:
    def test_should_keep_one_checker_up_through_voluntary_disruptions(self, default: Rendered) -> None:
        pdb = default.get("PodDisruptionBudget", name("extauthz"))
        assert pdb["spec"]["minAvailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "extauthz"
