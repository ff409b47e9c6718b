"""specs → Grant. Pure: the caller supplies the token digest and the sealed vendor key."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from pydantic_core import to_jsonable_python

from tollgate.policy.extension import PriceTable, extension
from tollgate.policy.grant import Approval, Grant, GrantBudget, LoopBreaker
from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec


def compile_grant(
    *,
    key_id: str,
    key: VaultKeySpec,
    policy_id: str,
    policy: SpendPolicySpec,
    token_sha256: str,
    sealed_credential: str,
    credential_fingerprint: str,
    budget: tuple[str, SpendBudgetSpec] | None = None,
) -> Grant:
    """`budget`: the (id, spec) of the SpendBudget the policy's budgetRef names; the caller refuses the key
    when the policy names one that does not exist, so it is never silently dropped here."""
    if (policy.budget_ref is None) != (budget is None):
        raise ValueError("the policy's budgetRef and the budget given do not agree")
    expires_at, expired_by = _earliest(key.expires_at, "VaultKey", policy.expires_at, "SpendPolicy")
    body: dict[str, object] = {
        "key_id": key_id,
        "policy_id": policy_id,
        "vendor": policy.vendor,
        "mode": policy.mode,
        "token_sha256": token_sha256,
        "credential": sealed_credential,
        "credential_fingerprint": credential_fingerprint,
        "daily_cap_micro_usd": policy.daily_cap_micro_usd,
        "allow": list(policy.allow),
        "customers": policy.customers,
        "connected_accounts": policy.connected_accounts,
        "params": policy.params,
        "usd_rates": {c.code: str(c.rate) for c in policy.currencies},
        "recipients": policy.recipients,
        "prices": unit_prices(policy),
        "time_zone": policy.time_zone,
        "expires_at": expires_at,
        "expired_by": expired_by,
        "suspended": key.suspended,
    }
    if budget is not None:  # only when set, so grants without one keep their version
        budget_id, spec = budget
        body["budget"] = GrantBudget(
            id=budget_id, daily_cap_micro_usd=spec.daily_cap_micro_usd, time_zone=spec.time_zone
        )
    if policy.loop_breaker is not None:  # only when set, so grants without one keep their version
        body["loop_breaker"] = _loop_breaker(policy)
    if (a := policy.approval) is not None:  # likewise
        body["approval"] = Approval(above_micro_usd=a.above_micro_usd, ttl_ms=a.ttl_ms, endpoints=a.endpoints)
    # The version names what the key may do, not the ciphertext (which changes on every seal).
    versioned = {k: v for k, v in body.items() if k != "credential"}
    digest = hashlib.sha256(json.dumps(to_jsonable_python(versioned), sort_keys=True).encode()).hexdigest()[
        :16
    ]
    return Grant(version=digest, **body)


def unit_prices(policy: SpendPolicySpec) -> PriceTable:
    """The vendor's default prices with the policy's on top, in micro-USD per unit (the vendor's own)."""
    return extension(policy.vendor).prices(policy)


def _loop_breaker(policy: SpendPolicySpec) -> LoopBreaker | None:
    lb = policy.loop_breaker
    if lb is None:
        return None
    return LoopBreaker(calls=lb.calls, window_ms=lb.window_ms, endpoints=lb.endpoints)


def _earliest(
    a: datetime | None, a_name: str, b: datetime | None, b_name: str
) -> tuple[datetime | None, str | None]:
    if a is None and b is None:
        return None, None
    if b is None or (a is not None and a <= b):
        return a, a_name
    return b, b_name
