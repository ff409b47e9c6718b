"""The CRDs against the models: generated from them, committed as generated, and agreeing with them on the
same good and bad specs, each bad one named by field on both sides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError
from tests.support import crd_schema
from tests.support.crd_schema import admission_errors
from typer.testing import CliRunner

from tollgate.cli.main import app
from tollgate.policy import crd
from tollgate.policy.manifests import field_errors
from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec

REPO = Path(__file__).resolve().parents[3]
MODELS: dict[str, type[BaseModel]] = {
    "SpendPolicy": SpendPolicySpec,
    "VaultKey": VaultKeySpec,
    "SpendBudget": SpendBudgetSpec,
}

STRIPE: dict[str, Any] = {"vendor": "stripe", "dailyCapUsd": "200", "allow": ["POST /v1/refunds"]}
TWILIO: dict[str, Any] = {
    "vendor": "twilio",
    "dailyCapUsd": 25,
    "allow": ["POST /2010-04-01/Accounts/*/Messages.json"],
    "connectedAccounts": ["AC" + "0" * 32],
}
RESEND: dict[str, Any] = {"vendor": "resend", "dailyCapUsd": "5", "allow": ["POST /emails"]}
KEY: dict[str, Any] = {
    "policyRef": {"name": "support-refunds"},
    "vendorKeySecretRef": {"name": "stripe-key", "key": "api-key"},
}


def policy(base: dict[str, Any] = STRIPE, **changes: Any) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not None}


def key(**changes: Any) -> dict[str, Any]:
    return {**KEY, **changes}


GOOD: list[tuple[str, dict[str, Any]]] = [
    ("SpendPolicy", policy()),
    ("SpendPolicy", policy(dailyCapUsd=0)),
    ("SpendPolicy", policy(dailyCapUsd="0.000001", mode="shadow")),
    (
        "SpendPolicy",
        policy(allow=["GET /v1/charges/*", "POST /v1/refunds", "GET /v1/**", "* /v1/customers/*"]),
    ),
    ("SpendPolicy", policy(customers=["cus_123"], connectedAccounts=["acct_1ABC"])),
    (
        "SpendPolicy",
        policy(
            params=[
                {"field": "amount", "op": "lte", "value": 5000, "endpoints": ["POST /v1/refunds"]},
                {"field": "capture_method", "op": "in", "value": ["manual"]},
                {"field": "cancel_at_period_end", "op": "absent"},
                {"field": "metadata[ticket]", "op": "present"},
            ]
        ),
    ),
    ("SpendPolicy", policy(currencies=[{"code": "usd"}, {"code": "eur", "usdRate": "1.08"}])),
    ("SpendPolicy", policy(timeZone="America/New_York", expiresAt="2027-01-01T00:00:00Z")),
    (
        "SpendPolicy",
        policy(
            TWILIO,
            recipients=["+1415", "+14155550100"],
            prices=[{"prefix": "+44", "smsSegmentUsd": "0.04"}, {"prefix": "+1", "mmsUsd": "0.02"}],
        ),
    ),
    ("SpendPolicy", policy(RESEND, recipients=["example.com", "ops@example.org"], pricePerEmailUsd="0.001")),
    ("SpendPolicy", policy(loopBreaker={"calls": 20, "per": "1m"})),
    ("SpendPolicy", policy(loopBreaker={"calls": 1, "per": "86400s", "endpoints": ["POST /v1/refunds"]})),
    ("SpendPolicy", policy(RESEND, loopBreaker={"calls": 100, "per": "24h"})),
    ("SpendPolicy", policy(approval={"aboveUsd": "100"})),
    ("SpendPolicy", policy(approval={"aboveUsd": 0, "ttl": "24h", "endpoints": ["POST /v1/refunds"]})),
    ("SpendPolicy", policy(RESEND, approval={"aboveUsd": "0.5", "ttl": "90s"})),
    ("SpendPolicy", policy(budgetRef={"name": "support-team"})),
    ("SpendBudget", {"dailyCapUsd": "2000"}),
    ("SpendBudget", {"dailyCapUsd": 0, "timeZone": "Europe/Paris"}),
    ("VaultKey", key()),
    ("VaultKey", key(expiresAt="2027-01-01T08:00:00+01:00", suspended=True)),
    ("VaultKey", key(tokenSecretName="bot-token", tokenRotation="2026-11-25")),
]

# (kind, spec, the field both must name)
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("SpendPolicy", policy(vendor="paypal"), "spec.vendor"),
    ("SpendPolicy", policy(vendor=None), "spec.vendor"),
    ("SpendPolicy", policy(dailyCapUsd=None), "spec.dailyCapUsd"),
    ("SpendPolicy", policy(dailyCapUsd="-1"), "spec.dailyCapUsd"),
    ("SpendPolicy", policy(dailyCapUsd=-1), "spec.dailyCapUsd"),
    ("SpendPolicy", policy(dailyCapUsd="12.0000001"), "spec.dailyCapUsd"),
    ("SpendPolicy", policy(dailyCapUsd="ten"), "spec.dailyCapUsd"),
    ("SpendPolicy", policy(mode="audit"), "spec.mode"),
    ("SpendPolicy", policy(allow=None), "spec.allow"),
    ("SpendPolicy", policy(allow=["PATCH /v1/refunds"]), "spec.allow[0]"),
    ("SpendPolicy", policy(allow=["POST v1/refunds"]), "spec.allow[0]"),
    ("SpendPolicy", policy(allow=["POST /v1/../refunds"]), "spec.allow[0]"),
    ("SpendPolicy", policy(allow=["GET /v1/**/charges"]), "spec.allow[0]"),
    ("SpendPolicy", policy(customers=["john"]), "spec.customers"),
    ("SpendPolicy", policy(connectedAccounts=["AC" + "0" * 32]), "spec.connectedAccounts"),
    ("SpendPolicy", policy(params=[{"field": "amount", "op": "about", "value": 1}]), "spec.params[0].op"),
    ("SpendPolicy", policy(params=[{"field": "a b", "op": "present"}]), "spec.params[0].field"),
    ("SpendPolicy", policy(currencies=[{"code": "euro", "usdRate": "1"}]), "spec.currencies[0].code"),
    ("SpendPolicy", policy(currencies=[{"code": "eur"}]), "spec.currencies[0]"),
    ("SpendPolicy", policy(currencies=[{"code": "eur", "usdRate": "0"}]), "spec.currencies[0]"),
    ("SpendPolicy", policy(currencies=[{"code": "usd"}, {"code": "USD"}]), "spec.currencies"),
    ("SpendPolicy", policy(expiresAt="next tuesday"), "spec.expiresAt"),
    ("SpendPolicy", policy(recipients=["+1415"]), "spec.recipients"),
    ("SpendPolicy", policy(TWILIO, connectedAccounts=None), "spec.connectedAccounts"),
    ("SpendPolicy", policy(TWILIO, connectedAccounts=["acct_1ABC"]), "spec.connectedAccounts"),
    ("SpendPolicy", policy(TWILIO, recipients=["ops@example.com"]), "spec.recipients"),
    ("SpendPolicy", policy(TWILIO, prices=[{"prefix": "+44"}]), "spec.prices[0]"),
    ("SpendPolicy", policy(TWILIO, prices=[{"prefix": "44", "mmsUsd": "1"}]), "spec.prices[0].prefix"),
    ("SpendPolicy", policy(RESEND, pricePerEmailUsd="-0.1"), "spec.pricePerEmailUsd"),
    ("SpendPolicy", policy(RESEND, recipients=["+1415"]), "spec.recipients"),
    ("SpendPolicy", policy(pricePerEmailUsd="0.001"), "spec.pricePerEmailUsd"),
    ("SpendPolicy", policy(TWILIO, customers=["cus_123"]), "spec.customers"),
    ("SpendPolicy", policy(RESEND, recipients=[f"r{i}.example.com" for i in range(1001)]), "spec.recipients"),
    ("SpendPolicy", policy(RESEND, recipients=["a" * 250 + "@example.com"]), "spec.recipients[0]"),
    ("SpendPolicy", policy(connectedAccounts=["acct_" + "1" * 250]), "spec.connectedAccounts[0]"),
    ("SpendPolicy", policy(RESEND, currencies=[{"code": "usd"}]), "spec.currencies"),
    ("SpendPolicy", policy(RESEND, connectedAccounts=["acct_1ABC"]), "spec.connectedAccounts"),
    ("SpendPolicy", policy(prices=[{"prefix": "+44", "mmsUsd": "0.02"}]), "spec.prices"),
    ("SpendPolicy", policy(RESEND, callReservationUsd="0.10"), "spec.callReservationUsd"),
    (
        "SpendPolicy",
        policy(
            TWILIO, prices=[{"prefix": "+44", "mmsUsd": "0.02"}, {"prefix": "+44", "smsSegmentUsd": "0.04"}]
        ),
        "spec.prices",
    ),
    ("SpendPolicy", policy(loopBreaker={"calls": 0, "per": "1m"}), "spec.loopBreaker.calls"),
    ("SpendPolicy", policy(loopBreaker={"per": "1m"}), "spec.loopBreaker.calls"),
    ("SpendPolicy", policy(loopBreaker={"calls": 20, "per": "1 minute"}), "spec.loopBreaker.per"),
    ("SpendPolicy", policy(loopBreaker={"calls": 20, "per": "0s"}), "spec.loopBreaker.per"),
    ("SpendPolicy", policy(loopBreaker={"calls": 20, "per": "25h"}), "spec.loopBreaker.per"),
    ("SpendPolicy", policy(loopBreaker={"calls": 20, "per": "1441m"}), "spec.loopBreaker.per"),
    (
        "SpendPolicy",
        policy(loopBreaker={"calls": 20, "per": "1m", "endpoints": ["POST v1/refunds"]}),
        "spec.loopBreaker.endpoints[0]",
    ),
    ("SpendPolicy", policy(approval={"ttl": "30m"}), "spec.approval.aboveUsd"),
    ("SpendPolicy", policy(approval={"aboveUsd": "-1"}), "spec.approval.aboveUsd"),
    ("SpendPolicy", policy(approval={"aboveUsd": "1.0000001"}), "spec.approval.aboveUsd"),
    ("SpendPolicy", policy(approval={"aboveUsd": "100", "ttl": "25h"}), "spec.approval.ttl"),
    ("SpendPolicy", policy(approval={"aboveUsd": "100", "ttl": "30 min"}), "spec.approval.ttl"),
    (
        "SpendPolicy",
        policy(approval={"aboveUsd": "100", "endpoints": ["POST v1/refunds"]}),
        "spec.approval.endpoints[0]",
    ),
    ("SpendPolicy", policy(TWILIO, approval={"aboveUsd": "100"}), "spec.approval"),
    ("SpendPolicy", policy(budgetRef={"name": "Support_Team"}), "spec.budgetRef.name"),
    ("SpendPolicy", policy(budgetRef={}), "spec.budgetRef.name"),
    ("SpendBudget", {}, "spec.dailyCapUsd"),
    ("SpendBudget", {"dailyCapUsd": "-5"}, "spec.dailyCapUsd"),
    ("SpendBudget", {"dailyCapUsd": "5", "timeZone": "Mars Base"}, "spec.timeZone"),
    ("SpendBudget", {"dailyCapUsd": "5.0000001"}, "spec.dailyCapUsd"),
    ("VaultKey", {"vendorKeySecretRef": KEY["vendorKeySecretRef"]}, "spec.policyRef"),
    ("VaultKey", key(policyRef={"name": "Not_A_Name"}), "spec.policyRef.name"),
    (
        "VaultKey",
        key(vendorKeySecretRef={"name": "stripe-key", "key": "bad key!"}),
        "spec.vendorKeySecretRef.key",
    ),
    ("VaultKey", key(expiresAt="2027-13-01T00:00:00Z"), "spec.expiresAt"),
    ("VaultKey", key(suspended="maybe"), "spec.suspended"),
    ("VaultKey", key(tokenSecretName="Bot_Token"), "spec.tokenSecretName"),
]


def model_errors(kind: str, spec: dict[str, Any]) -> list[str]:
    try:
        MODELS[kind].model_validate(spec)
    except ValidationError as exc:
        return field_errors(exc, "spec")
    return []


def names(errors: list[str], field: str) -> bool:
    # A cross-field rule speaks from its parent but opens with the field's name: "spec: connectedAccounts is …"
    parent, _, last = field.rpartition(".")
    return any(e.startswith((f"{field}:", f"{field}.", f"{field}[", f"{parent}: {last} ")) for e in errors)


@pytest.mark.parametrize(("kind", "spec"), GOOD, ids=[f"{k}-{i}" for i, (k, _) in enumerate(GOOD)])
def test_both_admit_a_good_spec(kind: str, spec: dict[str, Any]) -> None:
    assert admission_errors(kind, spec) == []
    assert model_errors(kind, spec) == []


@pytest.mark.parametrize(("kind", "spec", "field"), BAD, ids=[f for _, _, f in BAD])
def test_both_refuse_a_bad_spec_naming_the_field(kind: str, spec: dict[str, Any], field: str) -> None:
    crd_says, model_says = admission_errors(kind, spec), model_errors(kind, spec)
    assert names(crd_says, field), crd_says
    assert names(model_says, field), model_says


def test_an_unknown_field_is_pruned_by_the_api_server_but_named_by_the_model() -> None:
    # The one documented difference: a structural schema cannot forbid extra fields.
    spec = policy(dailyCapUSD="10")
    assert model_errors("SpendPolicy", spec) == ["spec.dailyCapUSD: Extra inputs are not permitted"]


def test_the_committed_crds_are_what_the_models_generate() -> None:
    for folder in ("crds", "charts/tollgate/files/crds"):
        for name, text in crd.rendered().items():
            path = REPO / folder / name
            assert path.exists() and path.read_text() == text, (
                f"{folder}/{name} is stale; run `tollgate dev gen-crds` in the repository root and commit the result"
            )


def test_gen_crds_writes_and_then_checks_clean(tmp_path: Path) -> None:
    runner = CliRunner()
    stale = runner.invoke(app, ["dev", "gen-crds", "--out", str(tmp_path), "--check"])
    assert stale.exit_code == 1 and "stale" in stale.output
    assert runner.invoke(app, ["dev", "gen-crds", "--out", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["dev", "gen-crds", "--out", str(tmp_path), "--check"]).exit_code == 0
    docs = [yaml.safe_load(p.read_text()) for p in sorted(tmp_path.glob("*.yaml"))]
    assert [d["spec"]["names"]["shortNames"] for d in docs] == [["spa"], ["sb"], ["sp"], ["vk"]]


@pytest.mark.parametrize(
    "build", [crd.spend_policy_crd, crd.vault_key_crd, crd.spend_approval_crd, crd.spend_budget_crd]
)
def test_each_crd_is_namespaced_with_a_status_subresource_and_the_columns_people_want(build: Any) -> None:
    doc = build()
    version = doc["spec"]["versions"][0]
    assert (doc["spec"]["group"], version["name"], doc["spec"]["scope"]) == (
        "tollgate.dev",
        "v1alpha1",
        "Namespaced",
    )
    assert version["subresources"] == {"status": {}}
    columns = {c["name"] for c in version["additionalPrinterColumns"]}
    wanted = {
        "SpendPolicy": {"Vendor", "Cap", "State", "Expires", "Age"},
        "VaultKey": {"Policy", "Cap", "Spent", "Remaining", "Expires", "State", "Age"},
        "SpendApproval": {"Key", "Policy", "Endpoint", "Amount", "State", "Age"},
        "SpendBudget": {"Cap", "Spent", "Remaining", "State", "Age"},
    }[doc["spec"]["names"]["kind"]]
    assert wanted <= columns


def _nodes(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        out.append((path, schema))
        for name, sub in schema.get("properties", {}).items():
            out += _nodes(sub, f"{path}.{name}")
        if "items" in schema:
            out += _nodes(schema["items"], f"{path}[]")
    return out


@pytest.mark.parametrize(
    "build", [crd.spend_policy_crd, crd.vault_key_crd, crd.spend_approval_crd, crd.spend_budget_crd]
)
def test_the_schema_is_structural(build: Any) -> None:
    # Every node has a type unless it says it holds int-or-string or unknown fields; no $ref, no anyOf types.
    root = build()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _nodes(root):
        assert "$ref" not in node and "anyOf" not in node and "oneOf" not in node, path
        assert (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ), f"{path} has no type"


def _rules(schema: Any) -> list[dict[str, Any]]:
    return [rule for _, node in _nodes(schema) for rule in node.get("x-kubernetes-validations", [])]


@pytest.mark.parametrize("kind", ["SpendPolicy", "VaultKey"])
def test_every_cel_rule_is_broken_by_some_bad_spec(kind: str) -> None:
    # A rule no bad spec breaks is a rule nobody has seen refuse anything: add a row to BAD.
    said = [e for k, spec, _ in BAD if k == kind for e in admission_errors(k, spec)]
    unbroken = [
        r["rule"]
        for r in _rules(crd_schema.spec_schema(kind))
        if not any(e.endswith(f": {r['message']}") for e in said)
    ]
    assert unbroken == [], "no row in BAD breaks these rules"


def _walked_lists(rule: str, node: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    # `self.all(…)` walks the node itself; `self.field.all(…)` walks one of its properties.
    out = [("self", node)] if re.search(r"self\.(all|exists|exists_one|map|filter)\(", rule) else []
    for name in re.findall(r"self\.(\w+)\.(?:all|exists|exists_one|map|filter)\(", rule):
        out.append((name, node["properties"][name]))
    return out


@pytest.mark.parametrize("kind", ["SpendPolicy", "VaultKey"])
def test_every_list_a_cel_rule_walks_is_bounded(kind: str) -> None:
    # The API server estimates a rule's worst-case cost from maxItems and maxLength and refuses a CRD whose
    # rule over an unbounded list (of unbounded strings) exceeds its budget; there is no API server here.
    for path, node in _nodes(crd_schema.spec_schema(kind)):
        for rule in node.get("x-kubernetes-validations", []):
            for name, walked in _walked_lists(rule["rule"], node):
                where = f"{path or 'spec'} {name} in {rule['rule']!r}"
                assert "maxItems" in walked, f"{where}: no maxItems"
                items = walked["items"]
                assert items.get("type") != "string" or "maxLength" in items, (
                    f"{where}: items have no maxLength"
                )


@pytest.mark.parametrize("build", [crd.spend_policy_crd, crd.vault_key_crd, crd.spend_budget_crd])
def test_every_cel_rule_is_one_the_api_server_registers(build: Any) -> None:
    # The API server refuses a CRD whose rule message spans lines or whose fieldPath names no field.
    root = build()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _nodes(root):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"].strip() and "\n" not in rule["message"], (path, rule)
            if "fieldPath" in rule:
                assert rule["fieldPath"].removeprefix(".") in node["properties"], (path, rule)
