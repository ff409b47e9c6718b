"""Grant: the compiled, versioned document ext_authz reads for one vault key. Pure.

A Grant folds the key, its policy and its sealed vendor key into one Redis value, so a call needs a
single read to know everything it may do. The operator (or local mode) rewrites it when any part changes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from tollgate.policy.rules import EndpointPattern, ParamRule
from tollgate.policy.spend_policy import Mode

GRANT_SCHEMA = 1


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = GRANT_SCHEMA
    key_id: str  # "namespace/name" of the VaultKey
    policy_id: str  # "namespace/name" of the SpendPolicy
    version: str  # digest of the inputs; changes whenever what the key may do changes
    vendor: str
    mode: Mode
    token_sha256: str
    credential: str  # the vendor key, sealed by CredentialBox
    credential_fingerprint: str
    daily_cap_micro_usd: int
    allow: list[EndpointPattern]
    customers: list[str] | None
    connected_accounts: list[str] | None
    params: list[ParamRule]
    usd_rates: dict[str, str]  # currency → USD per whole unit
    time_zone: str
    expires_at: datetime | None  # the earlier of the key's and the policy's
    expired_by: str | None  # "VaultKey" or "SpendPolicy": whose expiry applies
    suspended: bool

    def usd_rate(self, currency: str) -> Decimal | None:
        rate = self.usd_rates.get(currency.lower())
        return Decimal(rate) if rate is not None else None
