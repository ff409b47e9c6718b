"""The `tollgate` command's offline subcommands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tollgate import __version__
from tollgate.cli.main import app
from tollgate.local.processes import envoy_validate

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_check_accepts_the_local_example() -> None:
    r = runner.invoke(app, ["check", str(ROOT / "deploy/examples/local")])
    assert r.exit_code == 0, r.output
    assert "1 SpendPolicy, 1 VaultKey, 1 Secret" in r.output


def test_check_accepts_the_budgets_example_and_counts_its_spend_budget() -> None:
    r = runner.invoke(app, ["check", str(ROOT / "deploy/examples/budgets")])
    assert r.exit_code == 0, r.output
    assert "ok: 3 SpendPolicy, 3 VaultKey, 1 SpendBudget, 1 Secret" in r.output


def test_check_names_every_bad_field_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: tollgate.dev/v1alpha1\nkind: SpendPolicy\nmetadata: {name: p}\n"
        "spec: {vendor: stripe, dailyCapUsd: '5', allow: ['PUT /v1/refunds'], params: [{field: a, op: lte}]}\n"
        "---\napiVersion: tollgate.dev/v1alpha1\nkind: VaultKey\nmetadata: {name: k}\n"
        "spec: {policyRef: {name: missing}, vendorKeySecretRef: {name: s, key: k}}\n"
    )
    r = runner.invoke(app, ["check", str(tmp_path)])
    assert r.exit_code == 1
    assert "spec.allow[0]" in r.output
    assert "spec.params[0]" in r.output and "numeric" in r.output
    assert "spec.policyRef.name" in r.output and "default/missing" in r.output


def test_check_warns_of_stripe_allow_entries_that_match_no_known_endpoint(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: tollgate.dev/v1alpha1\nkind: SpendPolicy\nmetadata: {name: p, namespace: agents}\n"
        "spec: {vendor: stripe, dailyCapUsd: '5', allow: ['POST /v1/refunds', 'POST /v1/refundz', "
        "'GET /v1/checkout/sessions/*', 'POST /v1/customers/*/balance_transactions', 'GET /v1/**']}\n"
    )
    r = runner.invoke(app, ["check", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "'POST /v1/refundz' matches no stripe endpoint Tollgate knows" in r.output
    assert r.output.count("warning:") == 1, r.output


def test_envoy_render_writes_a_config_envoy_accepts(tmp_path: Path) -> None:
    out = tmp_path / "envoy.yaml"
    r = runner.invoke(
        app,
        [
            "envoy",
            "render",
            "--extauthz",
            "tollgate-extauthz:9001",
            "--extauthz",
            "tollgate-extauthz-2:9001",
            "--vendor",
            "stripe=https://api.stripe.com",
            "--admin-port",
            "9901",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    envoy_validate(out)  # raises when Envoy rejects the config
    text = out.read_text()
    assert "tollgate-extauthz-2" in text and "api.stripe.com" in text


def test_envoy_render_refuses_a_malformed_endpoint() -> None:
    r = runner.invoke(
        app, ["envoy", "render", "--extauthz", "nohostport", "--vendor", "stripe=https://api.stripe.com"]
    )
    assert r.exit_code == 2
    assert "host:port" in r.output


def test_check_skips_kinds_that_are_not_tollgates(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text((ROOT / "deploy/examples/local/support-refunds.yaml").read_text())
    (tmp_path / "secret.yaml").write_text((ROOT / "deploy/examples/local/stripe-secret.yaml").read_text())
    (tmp_path / "agent.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: support-bot, namespace: agents}\nspec: {}\n"
        "---\napiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n"  # not even a name: still not ours to judge
    )
    r = runner.invoke(app, ["check", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "1 SpendPolicy, 1 VaultKey, 1 Secret, skipped 2 of other kinds" in r.output


def test_check_still_refuses_an_unknown_kind_in_tollgates_group(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: tollgate.dev/v1alpha1\nkind: SpendPolicies\nmetadata: {name: p}\n"
    )
    r = runner.invoke(app, ["check", str(tmp_path)])
    assert r.exit_code == 1
    assert "unsupported kind" in r.output


@pytest.mark.parametrize(
    ("vendor", "allow", "flagged"),
    [
        pytest.param("stripe", ["POST /v1/refund", "POST /v1/refunds"], ["POST /v1/refund"], id="a typo"),
        pytest.param("stripe", ["GET /v1/charges/*", "GET /v1/charges/ch_123"], [], id="ids, or * for one"),
        pytest.param("stripe", ["POST /v1/**", "* /v1/customers/*"], [], id="wildcards"),
        pytest.param("stripe", ["DELETE /v1/refunds"], ["DELETE /v1/refunds"], id="a method the path lacks"),
        pytest.param(
            "twilio",
            ["POST /2010-04-01/Accounts/*/Messages.json", "GET /2010-04-01/Accounts/*/Messages/*",
             "POST /2010-04-01/Accounts/*/Message.json"],
            ["POST /2010-04-01/Accounts/*/Message.json"],
            id="twilio",
        ),
        pytest.param("resend", ["POST /emails", "POST /email"], ["POST /email"], id="resend"),
    ],
)  # fmt: skip
def test_check_warns_on_an_allow_entry_no_known_endpoint_matches(
    tmp_path: Path, vendor: str, allow: list[str], flagged: list[str]
) -> None:
    extra = {"twilio": ", connectedAccounts: [AC00000000000000000000000000000000]"}.get(vendor, "")
    (tmp_path / "p.yaml").write_text(
        "apiVersion: tollgate.dev/v1alpha1\nkind: SpendPolicy\nmetadata: {name: p}\n"
        f"spec: {{vendor: {vendor}, dailyCapUsd: '5', allow: {json.dumps(allow)}{extra}}}\n"
    )
    r = runner.invoke(app, ["check", str(tmp_path)])
    assert r.exit_code == 0, r.output
    warned = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == len(flagged), r.stderr
    for line, entry in zip(warned, flagged, strict=True):
        assert f"'{entry}'" in line and "SpendPolicy default/p" in line


def test_the_examples_the_readme_walks_through_give_no_warnings() -> None:
    for folder in ("local", "messaging"):
        r = runner.invoke(app, ["check", str(ROOT / "deploy/examples" / folder)])
        assert r.exit_code == 0, r.output
        assert "warning" not in r.stderr, r.stderr


def test_version_prints_the_package_version() -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0
    assert r.output.strip() == f"tollgate {__version__}"


def test_shell_completion_is_offered() -> None:
    r = runner.invoke(app, ["--help"])
    assert "--install-completion" in r.output and "--show-completion" in r.output
