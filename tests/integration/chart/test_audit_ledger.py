"""The chart tells the operator whether an audit keeps the spend ledger: with the audit sidecar, money
calls of a key wait until the audit has given Redis its spend; without it, the operator marks grants."""

from __future__ import annotations

from tests.integration.chart.render import Chart, name, pod_spec


def operator_env(chart: Chart, values: dict[str, object]) -> dict[str, object]:
    rendered = chart.render(values)
    (container,) = pod_spec(rendered.get("Deployment", name("operator")))["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_with_the_audit_the_operator_leaves_marking_spend_to_it(chart: Chart) -> None:
    assert "TOLLGATE_REDIS__AUDITED" not in operator_env(chart, {})


def test_without_the_audit_the_operator_marks_grants_itself(chart: Chart) -> None:
    assert operator_env(chart, {"audit": {"enabled": False}})["TOLLGATE_REDIS__AUDITED"] == "false"
