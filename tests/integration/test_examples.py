"""Every example under deploy/ is admitted by the CRD schema (as the API server would) and by the models (as
the operator would), and the example agent fits the chart it is meant for."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from tests.support.crd_schema import admission_errors

from tollgate.policy.manifests import load_path
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.reconcile.tokens import token_secret_name

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "deploy" / "examples"
VALUES = yaml.safe_load((REPO / "charts" / "tollgate" / "values.yaml").read_text())
KUBERNETES_VERSION = "1.35.0"
ROLES = {
    "support-refunds",
    "billing-collections",
    "subscription-manager",
    "readonly-analytics",
    "dispute-handler",
    "payment-capture",
}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def tollgate_objects() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for doc in documents(path):
            if doc.get("apiVersion", "").startswith("tollgate.dev/"):
                out.append((f"{path.relative_to(REPO)}:{doc['metadata']['name']}", doc))
    return out


OBJECTS = tollgate_objects()
AGENT = documents(EXAMPLES / "agent" / "agent.yaml")


def test_there_is_an_example_for_each_of_the_six_roles() -> None:
    policies = {doc["metadata"]["name"] for _, doc in OBJECTS if doc["kind"] == "SpendPolicy"}
    assert policies >= ROLES


@pytest.mark.parametrize(("where", "doc"), OBJECTS, ids=[w for w, _ in OBJECTS])
def test_each_example_is_admitted_by_the_crd_schema(where: str, doc: dict[str, Any]) -> None:
    assert doc["apiVersion"] == "tollgate.dev/v1alpha1"
    assert admission_errors(doc["kind"], doc["spec"]) == []


@pytest.mark.parametrize("folder", ["local", "roles", "messaging", "budgets", "approvals"])
def test_each_example_folder_loads_through_the_models(folder: str) -> None:
    manifests = load_path(EXAMPLES / folder)  # raises InvalidManifests naming the field
    assert manifests.policies and manifests.keys


@pytest.mark.parametrize("doc", AGENT, ids=[f"{d['kind']}/{d['metadata']['name']}" for d in AGENT])
def test_the_example_agent_validates_against_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_example_agent_mounts_its_vault_token_and_is_confined_by_the_chart() -> None:
    namespace = next(d for d in AGENT if d["kind"] == "Namespace")
    deployment = next(d for d in AGENT if d["kind"] == "Deployment")
    policy = VALUES["networkPolicy"]
    assert policy["agentNamespaceLabels"].items() <= namespace["metadata"]["labels"].items()
    pod = deployment["spec"]["template"]
    assert policy["agentPodLabels"].items() <= pod["metadata"]["labels"].items()

    key = next(d for _, d in OBJECTS if d["kind"] == "VaultKey" and d["metadata"]["name"] == "support-bot")
    assert key["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    secret = pod["spec"]["volumes"][0]["secret"]
    assert secret["secretName"] == token_secret_name("support-bot", VaultKeySpec.model_validate(key["spec"]))
    assert secret["items"] == [{"key": "token", "path": "token"}]

    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    port = VALUES["envoy"]["service"]["port"]
    assert env["STRIPE_API_BASE"] == f"http://tollgate-envoy.tollgate.svc:{port}/stripe"
    # The real key has no way in: no env var or volume refers to the vendor key's Secret.
    text = yaml.safe_dump(deployment)
    assert "stripe-platform-key" not in text


def test_the_messaging_example_prices_only_what_its_recipients_allow() -> None:
    """A price for a prefix outside `recipients` could never apply: the call is out of scope first."""
    manifests = load_path(EXAMPLES / "messaging")
    (sms,) = (p.spec for p in manifests.policies.values() if p.spec.vendor == "twilio")
    assert sms.recipients and sms.prices
    for price in sms.prices:
        assert any(price.prefix.startswith(r) for r in sms.recipients), price.prefix


def test_the_budgets_example_puts_a_stripe_a_twilio_and_a_resend_key_under_one_budget() -> None:
    manifests = load_path(EXAMPLES / "budgets")
    (budget,) = manifests.budgets.values()
    assert budget.spec.daily_cap_micro_usd == 2_000_000_000
    under = {str(p.spec.vendor) for p in manifests.policies.values() if p.spec.budget_ref}
    assert under == {"stripe", "twilio", "resend"}
    assert all(
        p.spec.budget_ref and p.spec.budget_ref.name == budget.name for p in manifests.policies.values()
    )


def test_the_approvals_example_holds_refunds_above_100_usd_for_a_person() -> None:
    manifests = load_path(EXAMPLES / "approvals")
    (policy,) = manifests.policies.values()
    approval = policy.spec.approval
    assert approval is not None and Decimal(approval.above_usd) == 100
    assert [str(e) for e in approval.endpoints or []] == ["POST /v1/refunds"]
    assert "POST /v1/refunds" in [str(a) for a in policy.spec.allow]
