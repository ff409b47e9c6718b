"""VaultKeySpec: the shape of `spec` on a tollgate.dev/v1alpha1 VaultKey. Pure."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import Field, field_validator

from tollgate.policy.spend_policy import Spec, object_name

_SECRET_KEY = re.compile(r"^[-._A-Za-z0-9]+$")


class PolicyRef(Spec):
    name: str = Field(description="Name of a SpendPolicy in the VaultKey's namespace.")

    @field_validator("name")
    @classmethod
    def _dns(cls, v: str) -> str:
        return object_name(v)


class SecretKeyRef(Spec):
    name: str = Field(description="Secret name, in the VaultKey's namespace.")
    key: str = Field(description="Key inside the Secret's data.")

    @field_validator("name")
    @classmethod
    def _dns(cls, v: str) -> str:
        return object_name(v, "Secret")

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not _SECRET_KEY.fullmatch(v):
            raise ValueError(f"{v!r} is not a valid Secret data key")
        return v


class VaultKeySpec(Spec):
    """One agent's credential: bound to a policy and to the Secret that holds the real vendor key."""

    policy_ref: PolicyRef = Field(description="The SpendPolicy this key is held to.")
    vendor_key_secret_ref: SecretKeyRef = Field(description="Where the real vendor API key lives.")
    expires_at: datetime | None = Field(
        default=None, description="RFC 3339 time after which the key is refused."
    )
    suspended: bool = Field(default=False, description="Pause the key without deleting it.")
    token_secret_name: str | None = Field(
        default=None,
        description="Secret the operator writes the vault token into (key `token`); `<name>-vault-token` when omitted.",
    )
    token_rotation: str | None = Field(
        default=None,
        description="Change this value (a date, a counter) to mint a new token; the old one is revoked at once.",
    )

    @field_validator("token_secret_name")
    @classmethod
    def _secret_name(cls, v: str | None) -> str | None:
        return v if v is None else object_name(v, "Secret")

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("expiresAt needs a time zone offset (RFC 3339, e.g. 2026-12-31T00:00:00Z)")
        return v
