"""The `tollgate` command's offline subcommands."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tollgate.cli.main import app
from tollgate.local.processes import envoy_validate

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_check_accepts_the_local_example() -> None:
    r = runner.invoke(app, ["check", str(ROOT / "deploy/examples/local")])
    assert r.exit_code == 0, r.output
    assert "1 SpendPolicy, 1 VaultKey, 1 Secret" in r.output


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
    assert "'POST /v1/refundz' matches no Stripe endpoint" in r.output
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
