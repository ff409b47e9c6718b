"""SpendPolicySpec: the shape of `spec` on a tollgate.dev/v1alpha1 SpendPolicy. Pure.

YAML is camelCase, Python is snake_case; unknown keys are errors so a typo never silently loosens a policy.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from tollgate.money import parse_usd
from tollgate.policy.rules import EndpointPattern, ParamRule

_CURRENCY = re.compile(r"^[a-z]{3}$")
_STRIPE_ACCOUNT = re.compile(r"^acct_[A-Za-z0-9]+$")
_STRIPE_CUSTOMER = re.compile(r"^cus_[A-Za-z0-9]+$")


class Spec(BaseModel):
    """Base for CRD specs: camelCase on the wire, strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, alias_generator=to_camel)


class Vendor(StrEnum):
    STRIPE = "stripe"


class Mode(StrEnum):
    ENFORCE = "enforce"
    SHADOW = "shadow"


class CurrencySpec(Spec):
    """A currency the policy accepts; any currency but USD needs the USD price of one unit."""

    code: str = Field(description="ISO 4217 code, lowercase (usd, eur, jpy).")
    usd_rate: str | None = Field(
        default=None,
        description="USD for one whole unit of this currency, as a decimal string (e.g. '1.08'). Required unless usd.",
    )

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, v: object) -> object:
        if isinstance(v, str):
            v = v.lower()
            if not _CURRENCY.match(v):
                raise ValueError(f"{v!r} is not a three-letter currency code")
        return v

    @model_validator(mode="after")
    def _rate(self) -> CurrencySpec:
        if self.usd_rate is None:
            if self.code != "usd":
                raise ValueError(
                    f"currency {self.code!r} needs usdRate (USD per unit) to be counted against the cap"
                )
            return self
        try:
            rate = Decimal(self.usd_rate)
        except InvalidOperation as exc:
            raise ValueError(f"usdRate {self.usd_rate!r} is not a decimal number") from exc
        if not rate.is_finite() or rate <= 0:
            raise ValueError("usdRate must be a positive number")
        return self

    @property
    def rate(self) -> Decimal:
        return Decimal(self.usd_rate) if self.usd_rate is not None else Decimal(1)


def _default_currencies() -> list[CurrencySpec]:
    return [CurrencySpec(code="usd")]


UsdAmount = Annotated[str | int, Field(description="USD as a decimal string ('250', '12.50') or integer.")]


class SpendPolicySpec(Spec):
    """What an agent bound to this policy may do with one vendor, and how much it may spend per day."""

    vendor: Vendor = Field(description="The vendor this policy governs.")
    mode: Mode = Field(
        default=Mode.ENFORCE,
        description="enforce denies; shadow allows everything and audits what would have been denied.",
    )
    daily_cap_usd: UsdAmount = Field(description="Most a key may spend per day, in USD.")
    allow: list[EndpointPattern] = Field(
        min_length=1,
        description="Endpoints allowed, as 'METHOD /path' with '*' for one segment, '**' for the rest.",
    )
    customers: list[str] | None = Field(
        default=None, description="Customers (cus_…) calls may touch; any customer when omitted."
    )
    connected_accounts: list[str] | None = Field(
        default=None,
        description="Connected accounts (acct_…) allowed in Stripe-Account or as a transfer destination; none when omitted.",
    )
    params: list[ParamRule] = Field(
        default_factory=list, description="Parameter rules every matching call must satisfy."
    )
    currencies: list[CurrencySpec] = Field(
        default_factory=_default_currencies,
        min_length=1,
        description="Currencies allowed; USD only when omitted.",
    )
    time_zone: str = Field(default="UTC", description="IANA time zone whose midnight resets the daily cap.")
    expires_at: datetime | None = Field(
        default=None, description="RFC 3339 time after which every key on it is refused."
    )

    @field_validator("daily_cap_usd", mode="before")
    @classmethod
    def _cap(cls, v: object) -> object:
        if isinstance(v, float):
            v = repr(v)  # YAML `250.1` is a float; its shortest repr is the decimal the person wrote
        if isinstance(v, str | int) and not isinstance(v, bool):
            parse_usd(v)
        return v

    @field_validator("customers")
    @classmethod
    def _customers(cls, v: list[str] | None) -> list[str] | None:
        for c in v or []:
            if not _STRIPE_CUSTOMER.match(c):
                raise ValueError(f"{c!r} is not a Stripe customer id (cus_…)")
        return v

    @field_validator("connected_accounts")
    @classmethod
    def _accounts(cls, v: list[str] | None) -> list[str] | None:
        for a in v or []:
            if not _STRIPE_ACCOUNT.match(a):
                raise ValueError(f"{a!r} is not a Stripe account id (acct_…)")
        return v

    @field_validator("currencies")
    @classmethod
    def _unique_currencies(cls, v: list[CurrencySpec]) -> list[CurrencySpec]:
        codes = [c.code for c in v]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"currency listed twice: {', '.join(dupes)}")
        return v

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{v!r} is not an IANA time zone") from exc
        return v

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("expiresAt needs a time zone offset (RFC 3339, e.g. 2026-12-31T00:00:00Z)")
        return v

    @property
    def daily_cap_micro_usd(self) -> int:
        return parse_usd(self.daily_cap_usd)
