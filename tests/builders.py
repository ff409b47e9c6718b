"""Tiny factories for tests: a policy, a key, a grant, a call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tollgate.credentials import CredentialBox, fingerprint, new_box_key, token_digest
from tollgate.decide.call import Call
from tollgate.policy.compile import compile_grant
from tollgate.policy.grant import Grant
from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.policy.spend_policy import BudgetRef, SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.vendors.wire import Wire

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOKEN = "tgk_test_token"
VENDOR_KEY = "sk_test_real_vendor_key"
BOX = CredentialBox([new_box_key()])


def spend_policy(**overrides: Any) -> SpendPolicySpec:
    spec: dict[str, Any] = {
        "vendor": "stripe",
        "dailyCapUsd": "100",
        "allow": ["POST /v1/refunds", "GET /v1/charges/*", "GET /v1/charges", "POST /v1/charges"],
    }
    spec.update(overrides)
    return SpendPolicySpec.model_validate(spec)


def vault_key(**overrides: Any) -> VaultKeySpec:
    spec: dict[str, Any] = {
        "policyRef": {"name": "refunds"},
        "vendorKeySecretRef": {"name": "stripe", "key": "api-key"},
    }
    spec.update(overrides)
    return VaultKeySpec.model_validate(spec)


def spend_budget(**overrides: Any) -> SpendBudgetSpec:
    spec: dict[str, Any] = {"dailyCapUsd": "50"}
    spec.update(overrides)
    return SpendBudgetSpec.model_validate(spec)


def grant(
    policy: SpendPolicySpec | None = None,
    key: VaultKeySpec | None = None,
    token: str = TOKEN,
    *,
    key_id: str = "agents/support-bot",
    budget: SpendBudgetSpec | None = None,
    budget_id: str = "agents/support",
) -> Grant:
    """A grant; with `budget`, its policy is under that SpendBudget (named `budget_id`)."""
    policy = policy or spend_policy()
    if budget is not None and policy.budget_ref is None:
        policy = policy.model_copy(update={"budget_ref": BudgetRef(name=budget_id.partition("/")[2])})
    return compile_grant(
        key_id=key_id,
        key=key or vault_key(),
        policy_id="agents/refunds",
        policy=policy,
        token_sha256=token_digest(token),
        sealed_credential=BOX.seal(VENDOR_KEY),
        credential_fingerprint=fingerprint(VENDOR_KEY),
        budget=(budget_id, budget) if budget is not None else None,
    )


def call(
    method: str = "POST", path: str = "/v1/refunds", params: dict[str, Any] | None = None, **headers: str
) -> Call:
    return Call(
        vendor="stripe",
        method=method,
        path=path,
        params=params or {},
        headers={k.replace("_", "-").lower(): v for k, v in headers.items()},
        request_id="req_test",
    )


def wire(
    content_type: str | None, body: bytes = b"", query: str = "", method: str = "POST", **headers: str
) -> Wire:
    """A request as ext_authz reads it, for a vendor's parse_params."""
    h = {k.replace("_", "-"): v for k, v in headers.items()}
    if content_type is not None:
        h["content-type"] = content_type
    return Wire(method, "/", query, h, body)
