"""checkov's Kubernetes checks over the rendered chart (defaults, and everything optional turned on):
any finding not in checkov-allowlist.yaml fails, with the check's name, and so does an allowlist
entry no finding matches any more. checkov comes from PyPI in a virtualenv of its own
(tests/support/scanners.py); the first run builds it, which takes a few minutes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.chart.render import Chart
from tests.support.ci import required
from tests.support.kubetools import ToolUnavailable
from tests.support.scanners import checkov_binary

ALLOWLIST = Path(__file__).with_name("checkov-allowlist.yaml")
RENDERS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "everything on": {
        "extauthz": {"metrics": {"enabled": True}},
        "metrics": {"serviceMonitor": {"enabled": True}},
        "operator": {"watchNamespaces": ["team-a"]},
        "networkPolicy": {"agentNamespaces": ["agents-a"]},
        "audit": {"database": {"existingSecret": "audit-db"}},
        "alerts": {"slackWebhook": {"existingSecret": "slack"}},
    },
}


def allowed() -> dict[tuple[str, str], str]:
    entries = yaml.safe_load(ALLOWLIST.read_text())
    out = {}
    for entry in entries:
        assert entry.get("reason", "").strip(), f"{entry['check']}: an allowlist entry needs a reason"
        for resource in entry["resources"]:
            out[(entry["check"], resource)] = entry["reason"]
    return out


def scan(folder: Path) -> list[dict[str, Any]]:
    with required("checkov", ToolUnavailable):
        checkov = checkov_binary()
    argv = [str(checkov), "--directory", str(folder), "--framework", "kubernetes", "--quiet", "--compact"]
    argv += ["--output", "json", "--skip-download"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode in (0, 1), f"checkov failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports), "checkov could not parse a render"
    assert sum(r["summary"]["passed"] for r in reports) > 100, "checkov checked next to nothing"
    return [f for r in reports for f in r["results"]["failed_checks"]]


def finding_key(finding: dict[str, Any]) -> tuple[str, str]:
    kind, _namespace, name = finding["resource"].split(".", 2)
    return finding["check_id"], f"{kind}/{name}"


@pytest.mark.timeout(1500)  # the first run installs checkov
def test_the_rendered_chart_has_no_scanner_finding_outside_the_allowlist(
    chart: Chart, tmp_path: Path
) -> None:
    for label, values in RENDERS.items():
        done = chart.run(*chart.template_argv(), values=values)
        assert done.returncode == 0, done.stderr
        (tmp_path / f"{label.replace(' ', '-')}.yaml").write_text(done.stdout)
    findings = scan(tmp_path)
    accepted = allowed()
    unexpected = sorted(
        {
            f"{finding_key(f)[1]}: {f['check_id']} {f['check_name']}"
            for f in findings
            if finding_key(f) not in accepted
        }
    )
    assert not unexpected, "new scanner findings (fix them, or allowlist them with a reason):\n" + "\n".join(
        unexpected
    )
    stale = sorted(set(accepted) - {finding_key(f) for f in findings})
    assert not stale, f"allowlist entries no finding matches any more (remove them): {stale}"
