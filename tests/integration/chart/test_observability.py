"""The chart's Grafana dashboard and PrometheusRule, and the log format it sets: rendered by the real helm,
and every query checked against the metrics the code exports (names and labels), so a renamed metric or
a label that does not exist fails here instead of drawing an empty panel or an alert that never fires."""

from __future__ import annotations

import json
import re
from typing import Any

import kubernetes_validate
import pytest
from tests.integration.chart.render import (
    CHART,
    KUBERNETES_VERSION,
    NAMESPACE,
    Chart,
    Obj,
    env_of,
    name,
    pod_spec,
)

from tollgate.audit.metrics import AuditMetrics
from tollgate_extauthz.metrics import CAP_SHARE_BUCKETS, Metrics

DASHBOARD = json.loads((CHART / "dashboards" / "tollgate.json").read_text())
ON = {
    "extauthz": {"metrics": {"enabled": True}},
    "metrics": {"grafanaDashboard": {"enabled": True}, "prometheusRule": {"enabled": True}},
}
# Labels Prometheus adds when it scrapes (the Prometheus Operator's namespace, pod, …) and the bucket bound.
SCRAPE_LABELS = {"namespace", "pod", "instance", "job", "service", "le"}
# PromQL's functions, aggregations and keywords: words in a query that are not metric names.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "by", "without", "on", "ignoring",
    "group_left", "group_right", "and", "or", "unless", "bool", "offset", "rate", "irate", "increase",
    "delta", "histogram_quantile", "time", "vector", "absent", "clamp_min", "clamp_max",
}  # fmt: skip


def exported() -> dict[str, set[str]]:
    """Every series name the code exports → its label names (counters with _total, histograms' parts)."""
    names: dict[str, set[str]] = {}
    for registry in (Metrics().registry, AuditMetrics().registry):
        for collector in list(registry._collector_to_names):  # the registered collectors
            # prometheus_client's metrics keep their label names in _labelnames; ext_authz's Family in labelnames.
            labels = set(getattr(collector, "_labelnames", None) or getattr(collector, "labelnames", ()))
            for family in collector.describe():
                suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
                for suffix in suffixes.get(family.type, [""]):
                    names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


EXPORTED = exported()


def names_and_labels(expr: str) -> tuple[set[str], set[str]]:
    """Metric names a PromQL expression reads, and the label names it matches or groups by."""
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and strings say nothing here
    code = re.sub(r"\$\{?\w+\}?", "", code)  # Grafana variables ($__range, ${datasource})
    code = re.sub(r"\[[^\]]*\]", "", code)  # range selectors [5m]
    labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", " ".join(re.findall(r"\{([^}]*)\}", code))))
    for grouping in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", code):
        labels |= {w.strip() for w in grouping.split(",") if w.strip()}
    code = re.sub(r"\{[^}]*\}", " ", code)
    code = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", code)
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", code))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+(e\d+)?", w)}, labels


def dashboard_queries() -> list[tuple[str, str]]:
    out = []
    for panel in DASHBOARD["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def check_query(expr: str) -> None:
    metrics, labels = names_and_labels(expr)
    assert metrics, f"{expr!r} names no metric"
    unknown = metrics - set(EXPORTED)
    assert not unknown, f"{expr!r} reads {sorted(unknown)}, which the code does not export"
    allowed = set().union(*(EXPORTED[m] for m in metrics)) | SCRAPE_LABELS
    assert labels <= allowed, f"{expr!r} uses labels {sorted(labels - allowed)} its metrics do not have"
    assert expr.count("(") == expr.count(")"), f"unbalanced parentheses in {expr!r}"


def test_the_query_checker_catches_a_wrong_name_and_a_wrong_label() -> None:
    with pytest.raises(AssertionError, match="does not export"):
        check_query("sum(rate(tollgate_decision_total[5m]))")
    with pytest.raises(AssertionError, match="labels"):
        check_query("sum by (key) (rate(tollgate_decisions_total[5m]))")
    with pytest.raises(AssertionError, match="names no metric"):
        check_query("vector(1)")
    check_query('sum by (le) (rate(tollgate_check_duration_seconds_bucket{vendor=~"$vendor"}[5m]))')


@pytest.mark.parametrize(("title", "expr"), dashboard_queries(), ids=[t for t, _ in dashboard_queries()])
def test_every_dashboard_query_reads_metrics_the_code_exports(title: str, expr: str) -> None:
    check_query(expr)


def test_every_dashboard_variable_reads_a_label_its_metric_has() -> None:
    for var in DASHBOARD["templating"]["list"]:
        if var["type"] != "query":
            continue
        metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", var["query"]["query"]).groups()  # type: ignore[union-attr]
        assert label in EXPORTED[metric] | SCRAPE_LABELS, var["name"]


def test_every_variable_a_query_uses_is_defined() -> None:
    defined = {v["name"] for v in DASHBOARD["templating"]["list"]} | {
        "__range",
        "__interval",
        "__rate_interval",
    }
    used = {m for _, e in dashboard_queries() for m in re.findall(r"\$\{?(\w+)", e)}
    used |= set(re.findall(r"\$\{(\w+)\}", json.dumps(DASHBOARD)))  # panels' data source
    assert used <= defined, sorted(used - defined)


def test_the_dashboard_shows_spend_per_policy_caps_decisions_denials_replays_latency_and_errors() -> None:
    read = set().union(*(names_and_labels(e)[0] for _, e in dashboard_queries()))
    assert {
        "tollgate_reserved_micro_usd_total",  # spend per policy and vendor
        "tollgate_cap_spent_ratio_bucket",  # remaining cap
        "tollgate_decisions_total",  # decisions by rule, denials
        "tollgate_replays_total",
        "tollgate_check_duration_seconds_bucket",
        "tollgate_store_errors_total",
    } <= read
    # shared budgets and approvals, with the audit's decisions beside ext_authz's
    assert {
        "tollgate_budget_reserved_micro_usd_total",
        "tollgate_budget_spent_ratio_bucket",
        "tollgate_approvals_total",
        "tollgate_approval_decisions_total",
    } <= read
    by_policy = [e for _, e in dashboard_queries() if "policy" in names_and_labels(e)[1]]
    assert any("tollgate_reserved_micro_usd_total" in e for e in by_policy)


def test_spend_per_policy_does_not_name_keys() -> None:
    """Bounded labels: policies (written by people, shared by many keys) yes, keys and customers no."""
    for metric, labels in EXPORTED.items():
        assert not labels & {"key", "vault_key", "vault_key_id", "customer", "token"}, metric


class TestDashboardConfigMap:
    def test_should_be_off_by_default(self, chart: Chart) -> None:
        rendered = chart.render()
        assert rendered.find("ConfigMap", name("dashboard")) is None
        assert rendered.of_kind("PrometheusRule") == []

    def test_should_carry_the_dashboard_with_the_sidecar_label(self, chart: Chart) -> None:
        cm = chart.render(ON).get("ConfigMap", name("dashboard"))
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(cm["data"]["tollgate.json"]) == DASHBOARD
        kubernetes_validate.validate(cm, KUBERNETES_VERSION, strict=True)

    def test_should_go_to_the_namespace_and_folder_asked_for(self, chart: Chart) -> None:
        values = {"metrics": {"grafanaDashboard": {
            "enabled": True, "namespace": "monitoring", "labels": {"dash": "yes"},
            "annotations": {"grafana_folder": "Payments / Tollgate"},
        }}}  # fmt: skip
        cm = chart.render(values).get("ConfigMap", name("dashboard"), namespace="monitoring")
        assert cm["metadata"]["labels"]["dash"] == "yes"
        assert cm["metadata"]["annotations"] == {"grafana_folder": "Payments / Tollgate"}


class TestPrometheusRule:
    def rules(self, chart: Chart, extra: dict[str, Any] | None = None) -> dict[str, Obj]:
        values = json.loads(json.dumps(ON))
        values["metrics"]["prometheusRule"].update(extra or {})
        (rule,) = chart.render(values).of_kind("PrometheusRule")
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
        assert rule["metadata"]["namespace"] == NAMESPACE
        return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}

    def test_should_alert_on_store_errors_extauthz_unavailable_deny_bursts_caps_budgets_and_approvals(
        self, chart: Chart
    ) -> None:
        rules = self.rules(chart)
        assert set(rules) == {
            "TollgateStoreErrors",
            "TollgateExtAuthzUnavailable",
            "TollgateDenyBurst",
            "TollgateKeysNearCap",
            "TollgateBudgetNearCap",
            "TollgateBudgetExhausted",
            "TollgateApprovalsWaiting",
            "TollgateApprovalsExpired",
        }
        for alert, rule in rules.items():
            check_query(rule["expr"])
            assert f'namespace="{NAMESPACE}"' in rule["expr"], alert
            assert rule["labels"]["severity"] in ("critical", "warning")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]

    def test_should_take_thresholds_from_values(self, chart: Chart) -> None:
        values = {"denyBurst": 7, "capShare": "0.95", "storeErrorsFor": "30s", "approvalsWaitingFor": "2h"}
        rules = self.rules(chart, values)
        assert rules["TollgateDenyBurst"]["expr"].rstrip().endswith("> 7")
        for near in ("TollgateKeysNearCap", "TollgateBudgetNearCap"):
            assert 'le="0.95"' in rules[near]["expr"]
            assert "95%" in rules[near]["annotations"]["summary"]
        assert rules["TollgateApprovalsWaiting"]["expr"].count("[2h]") == 2
        assert rules["TollgateStoreErrors"]["for"] == "30s"

    def test_should_offer_only_cap_shares_that_are_buckets(self, chart: Chart) -> None:
        """The alert subtracts one bucket from the count, so its share must be a bucket bound exactly."""
        schema = json.loads((CHART / "values.schema.json").read_text())
        rule = schema["properties"]["metrics"]["properties"]["prometheusRule"]["properties"]
        assert {float(v) for v in rule["capShare"]["enum"]} <= set(CAP_SHARE_BUCKETS)
        values = {**ON, "metrics": {"prometheusRule": {"enabled": True, "capShare": "0.7"}}}
        assert "capShare" in chart.render_error(values)

    def test_should_leave_out_the_approval_alerts_without_the_audits_metrics(self, chart: Chart) -> None:
        """They read the audit sidecar's tollgate_approval_decisions_total: without it, the waiting alert
        would fire on every approval asked for."""
        values = {**ON, "audit": {"metrics": {"enabled": False}}}
        (rule,) = chart.render(values).of_kind("PrometheusRule")
        alerts = {r["alert"] for group in rule["spec"]["groups"] for r in group["rules"]}
        assert "TollgateBudgetNearCap" in alerts
        assert not alerts & {"TollgateApprovalsWaiting", "TollgateApprovalsExpired"}

    def test_should_refuse_to_render_without_extauthz_metrics(self, chart: Chart) -> None:
        error = chart.render_error({"metrics": {"prometheusRule": {"enabled": True}}})
        assert "needs extauthz.metrics.enabled" in error


class TestLogFormat:
    def test_should_set_the_log_format_of_every_tollgate_process(self, chart: Chart) -> None:
        rendered = chart.render({"logFormat": "json"})
        extauthz = pod_spec(rendered.get("Deployment", name("extauthz")))["containers"][0]
        assert env_of(extauthz)["TOLLGATE_LOG_FORMAT"]["value"] == "json"
        envoy_pod = pod_spec(rendered.get("Deployment", name("envoy")))
        audit = next(c for c in envoy_pod["containers"] if "audit" in c["name"])
        assert env_of(audit)["TOLLGATE_LOG_FORMAT"]["value"] == "json"
        operator = pod_spec(rendered.get("Deployment", name("operator")))["containers"][0]
        assert "--log-format=json" in operator["args"]

    def test_should_default_to_text(self, chart: Chart) -> None:
        rendered = chart.render()
        operator = pod_spec(rendered.get("Deployment", name("operator")))["containers"][0]
        assert not any(a.startswith("--log-format") for a in operator["args"])
        assert "json" in chart.render_error({"logFormat": "yaml"})


class TestHealthProbes:
    def test_should_probe_readiness_on_the_service_gated_on_redis_and_liveness_on_the_process(
        self, chart: Chart
    ) -> None:
        from tollgate_extauthz.server import SERVICE

        container = pod_spec(chart.render().get("Deployment", name("extauthz")))["containers"][0]
        assert container["readinessProbe"]["grpc"]["service"] == SERVICE
        # No service: the overall status, which the server keeps SERVING while the process answers.
        assert "service" not in container["livenessProbe"]["grpc"]
