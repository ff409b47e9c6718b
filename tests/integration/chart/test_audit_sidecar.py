"""The audit sidecar beside Envoy."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import yaml
from tests.integration.chart.render import (
    ALTERNATIVES,
    Chart,
    Obj,
    Rendered,
    Values,
    env_of,
    install_notes,
    merged,
    name,
    pod_spec,
)


class TestAuditSidecar:
    def notes(self, chart: Chart, values: Values) -> str:
        return install_notes(chart, values)

    def containers(self, rendered: Rendered) -> dict[str, Obj]:
        return {c["name"]: c for c in pod_spec(rendered.get("Deployment", name("envoy")))["containers"]}

    def test_should_read_the_access_log_envoy_writes_into_a_shared_volume(self, default: Rendered) -> None:
        spec = pod_spec(default.get("Deployment", name("envoy")))
        (render,) = spec["initContainers"]
        args = render["args"]
        assert args[args.index("--access-log-path") + 1] == "/var/log/tollgate/access.log"
        containers = self.containers(default)
        mounts = {c: {m["mountPath"]: m["name"] for m in containers[c]["volumeMounts"]} for c in containers}
        assert mounts["envoy"]["/var/log/tollgate"] == mounts["audit"]["/var/log/tollgate"] == "access-log"
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["access-log"]["emptyDir"] == {"sizeLimit": "2Gi"}
        audit = containers["audit"]
        assert audit["command"] == ["tollgate", "audit", "ingest"]
        # rotation asks Envoy's admin, which listens on 127.0.0.1 of this very Pod
        assert audit["args"][audit["args"].index("--envoy-admin") + 1] == "http://127.0.0.1:9901"
        assert audit["args"][audit["args"].index("--rotate-bytes") + 1] == "67108864"

    def test_should_default_to_sqlite_in_the_pod_and_warn_about_it(
        self, chart: Chart, default: Rendered
    ) -> None:
        env = env_of(self.containers(default)["audit"])
        assert env["TOLLGATE_AUDIT__URL"]["value"] == "sqlite:////var/lib/tollgate/audit.db"
        assert "TOLLGATE_ALERTS__SLACK_WEBHOOK_URL" not in env
        notes = self.notes(chart, {})
        assert "audit writes to SQLite" in notes

    def test_should_take_the_database_url_and_webhook_from_secrets(self, chart: Chart) -> None:
        rendered = chart.render(ALTERNATIVES["audit on postgresql, alerts to slack"])
        env = env_of(self.containers(rendered)["audit"])
        assert env["TOLLGATE_AUDIT__URL"]["valueFrom"]["secretKeyRef"] == {"name": "audit-db", "key": "url"}
        assert env["TOLLGATE_ALERTS__SLACK_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "slack-webhook",
            "key": "webhook",
        }
        assert "TOLLGATE_CREDENTIALS__KEYS" not in env  # the audit never opens a vendor key
        assert "audit writes to SQLite" not in self.notes(
            chart, ALTERNATIVES["audit on postgresql, alerts to slack"]
        )
        egress = rendered.get("NetworkPolicy", name("envoy"))["spec"]["egress"]
        db = next(r for r in egress if r["ports"] == [{"protocol": "TCP", "port": 5432}])
        assert db["to"] == [{"ipBlock": {"cidr": "10.0.0.0/8"}}]
        assert any(r["ports"] == [{"protocol": "TCP", "port": 443}] for r in egress)  # the webhook

    def test_should_keep_a_database_url_given_in_values_in_a_secret(self, chart: Chart) -> None:
        rendered = chart.render(ALTERNATIVES["audit database url in values"])
        secret = rendered.get("Secret", name("audit"))
        assert base64.b64decode(secret["data"]["url"]).decode().endswith("@db.example:5432/audit")
        env = env_of(self.containers(rendered)["audit"])
        assert env["TOLLGATE_AUDIT__URL"]["valueFrom"]["secretKeyRef"] == {
            "name": name("audit"),
            "key": "url",
        }
        deployment = yaml.safe_dump(rendered.get("Deployment", name("envoy")))
        assert "s3cret-pw" not in deployment

    def test_should_refuse_both_a_url_and_an_existing_secret(self, chart: Chart) -> None:
        error = chart.render_error(
            {"audit": {"database": {"url": "postgresql://x@y/z", "existingSecret": "s"}}}
        )
        assert "audit.database: set `url` or `existingSecret`, not both" in error

    def test_should_leave_envoy_alone_and_warn_when_off(self, chart: Chart) -> None:
        rendered = chart.render(ALTERNATIVES["audit off"])
        assert list(self.containers(rendered)) == ["envoy"]
        (render,) = pod_spec(rendered.get("Deployment", name("envoy")))["initContainers"]
        assert "--access-log-path" not in render["args"]
        assert "calls are enforced but not audited" in self.notes(chart, ALTERNATIVES["audit off"])
        components = [
            p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
            for p in rendered.get("NetworkPolicy", name("redis"))["spec"]["ingress"][0]["from"]
        ]
        assert "envoy" not in components

    def test_should_be_scraped_by_its_own_service_monitor(self, chart: Chart) -> None:
        rendered = chart.render(ALTERNATIVES["service monitor"])
        monitor = rendered.get("ServiceMonitor", name("audit"))
        assert monitor["spec"]["endpoints"][0]["port"] == "audit-metrics"
        service = rendered.get("Service", name("envoy"))
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        ingress = rendered.get("NetworkPolicy", name("envoy"))["spec"]["ingress"]
        assert ingress[-1]["ports"] == [{"protocol": "TCP", "port": 9103}]
        assert ingress[-1]["from"] == ALTERNATIVES["service monitor"]["networkPolicy"]["metricsFrom"]

    def test_should_pass_arguments_the_real_ingester_accepts(self, default: Rendered, tmp_path: Path) -> None:
        args = list(self.containers(default)["audit"]["args"])
        args[args.index("--metrics-port") + 1] = "0"  # no port of this machine's taken
        log = tmp_path / "access.log"
        log.write_text("")
        tollgate = Path(sys.executable).parent / "tollgate"
        env = {**os.environ, "TOLLGATE_AUDIT__URL": f"sqlite:///{tmp_path / 'audit.db'}"}
        env["TOLLGATE_AUDIT__LOG_PATH"] = str(log)
        done = subprocess.run(
            [str(tollgate), "audit", "ingest", *args, "--once"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "audit.db").exists()

    def test_should_give_the_envoy_pod_only_the_redis_database_and_webhook_secrets(
        self, chart: Chart
    ) -> None:
        rendered = chart.render(ALTERNATIVES["audit on postgresql, alerts to slack"])
        spec = pod_spec(rendered.get("Deployment", name("envoy")))
        referenced = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for c in spec["containers"] + spec.get("initContainers", [])
            for e in c.get("env") or []
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        referenced |= {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
        # the Fernet keys that open sealed vendor keys belong to ext_authz and the operator alone
        assert referenced == {name("redis"), "audit-db", "slack-webhook"}
        assert name("credentials") not in yaml.safe_dump(rendered.get("Deployment", name("envoy")))

    def test_should_have_no_place_for_a_vendor_key_in_values(self, chart: Chart) -> None:
        real_key = "sk_live_51Hx0000000000000000000000000000"
        for values in (
            {"vendors": [{"name": "stripe", "url": "https://api.stripe.com", "apiKey": real_key}]},
            {"audit": {"vendorKey": real_key}},
        ):
            error = chart.render_error(values)
            assert "additional properties" in error.lower() or "not allowed" in error.lower(), error
            assert real_key not in error


class TestMetricsScrapeAnnotations:
    def annotations(self, rendered: Rendered, component: str) -> dict[str, str]:
        template = rendered.get("Deployment", name(component))["spec"]["template"]
        return dict(template["metadata"].get("annotations") or {})

    def test_should_annotate_the_extauthz_and_audit_pods_for_scraping(self, chart: Chart) -> None:
        rendered = chart.render(
            merged(ALTERNATIVES["service monitor"], {"extauthz": {"podAnnotations": {"team": "payments"}}})
        )
        extauthz = self.annotations(rendered, "extauthz")
        assert extauthz == {
            "team": "payments",
            "prometheus.io/scrape": "true",
            "prometheus.io/port": "9090",
            "prometheus.io/path": "/metrics",
        }
        assert self.annotations(rendered, "envoy")["prometheus.io/port"] == "9103"  # the audit sidecar

    def test_should_not_annotate_pods_that_serve_no_metrics(self, chart: Chart, default: Rendered) -> None:
        assert "prometheus.io/scrape" not in self.annotations(default, "extauthz")
        rendered = chart.render(ALTERNATIVES["audit off"])
        assert "prometheus.io/scrape" not in self.annotations(rendered, "envoy")
