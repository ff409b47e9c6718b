"""`tollgate picker`: text, JSON and YAML output, the policy it writes, and `picker check`'s exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from tollgate.cli.main import app
from tollgate.policy.manifests import load_path

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_picker_without_a_subcommand_picks_and_prints_everything() -> None:
    r = runner.invoke(app, ["picker", "support-refunds", "billing-collections"])
    assert r.exit_code == 0, r.output
    assert any(line.split() == ["Refunds:", "Write", "refund_write"] for line in r.output.splitlines())
    assert 'stripe apps grant permission "payment_intent_write"' in r.output
    assert "Blast radius: " in r.output
    assert "no `stripe restricted_keys create` command" in " ".join(r.output.split())
    assert "! payment_intent_write + refund_write:" in r.output
    policy = yaml.safe_load(r.output.split("\n---\n", 1)[1])
    assert policy["kind"] == "SpendPolicy" and "POST /v1/invoices/*/pay" in policy["spec"]["allow"]


def test_read_only_analytics_prints_no_warnings() -> None:
    r = runner.invoke(app, ["picker", "pick", "readonly-analytics"])
    assert r.exit_code == 0, r.output
    assert "Warnings:" not in r.output and "_write" not in r.output


def test_json_and_yaml_output_carry_the_same_pick() -> None:
    as_json = runner.invoke(app, ["picker", "dispute-handler", "--output", "json"])
    as_yaml = runner.invoke(app, ["picker", "dispute-handler", "-o", "yaml"])
    assert as_json.exit_code == 0 and as_yaml.exit_code == 0, as_json.output + as_yaml.output
    data = json.loads(as_json.output)
    assert "restricted_keys create" in data["stripe_cli_note"]
    assert data == yaml.safe_load(as_yaml.output)
    assert [p["permission"] for p in data["permissions"]] == ["charge_read", "dispute_write", "file_write"]
    assert data["blast_radius"]["score"] == sum(data["blast_radius"]["parts"].values())


def test_policy_out_writes_a_manifest_the_gateway_loads(tmp_path: Path) -> None:
    out = tmp_path / "policy.yaml"
    r = runner.invoke(
        app, ["picker", "fraud-reviewer", "quote-manager", "--name", "ops", "--namespace", "agents",
              "--policy-out", str(out), "-o", "json"]
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert runner.invoke(app, ["check", str(out)]).exit_code == 0
    (policy,) = load_path(out).policies.values()
    assert policy.id == "agents/ops"
    assert "POST /v1/reviews/*/approve" in policy.spec.allow and "POST /v1/quotes" in policy.spec.allow
    # and the key the picker suggested covers the policy it wrote
    perms = [p["permission"] for p in json.loads(r.output)["permissions"]]
    args = [a for p in perms for a in ("--permission", p)]
    assert runner.invoke(app, ["picker", "check", str(out), *args]).exit_code == 0


def test_unknown_use_case_exits_2_and_lists_the_known_ones() -> None:
    r = runner.invoke(app, ["picker", "refund-everything"])
    assert r.exit_code == 2
    assert "support-refunds" in r.output


def test_list_shows_every_use_case() -> None:
    r = runner.invoke(app, ["picker", "list", "-o", "json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)) >= 14


def test_check_reports_an_over_broad_policy_and_exits_1() -> None:
    r = runner.invoke(
        app,
        ["picker", "check", str(ROOT / "deploy/examples/roles/support-refunds.yaml"),
         "--permission", "refund:write", "--permission", "charge_read"],
    )  # fmt: skip
    assert r.exit_code == 1, r.output
    assert "GET /v1/payment_intents/*  (needs payment_intent_read)" in r.output
    assert "GET /v1/customers/*  (needs customer_read)" in r.output
    assert "POST /v1/refunds" not in r.output


def test_check_passes_for_the_examples_with_the_picked_permissions() -> None:
    perms = ("refund:write", "charge:read", "payment_intent:read", "customer:read")
    args = [a for p in perms for a in ("--permission", p)]
    r = runner.invoke(
        app, ["picker", "check", str(ROOT / "deploy/examples/roles/support-refunds.yaml"), *args]
    )
    assert r.exit_code == 0, r.output
    assert r.output.startswith("ok: agents/support-refunds")


def test_check_rejects_a_bad_permission_with_exit_2() -> None:
    path = str(ROOT / "deploy/examples/roles/support-refunds.yaml")
    assert runner.invoke(app, ["picker", "check", path, "--permission", "refunds"]).exit_code == 2
    assert runner.invoke(app, ["picker", "check", path, "--permission", "nosuch:read"]).exit_code == 2


def test_picker_web_writes_one_self_contained_page(tmp_path: Path) -> None:
    from tollgate.web import picker_page

    out = tmp_path / "picker.html"
    r = runner.invoke(app, ["picker", "web", "--out", str(out)])
    assert r.exit_code == 0, r.output
    page = out.read_text(encoding="utf-8")
    assert page == picker_page.render()
    assert '<script type="application/json" id="picker-data">' in page and "support-refunds" in page
