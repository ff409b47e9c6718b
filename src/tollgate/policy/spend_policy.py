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

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonDict
from pydantic_core import PydanticCustomError

from tollgate.money import parse_usd
from tollgate.policy.extension import extension, extensions, vendors_of
from tollgate.policy.rules import EndpointPattern, ParamRule

_CURRENCY = re.compile(r"^[a-z]{3}$")
# An E.164 number, or any leading part of one: "+1", "+1415", "+14155550100".
PHONE_PREFIX = re.compile(r"^\+[1-9][0-9]{0,14}$")
_DURATION = re.compile(r"^([1-9][0-9]*)(s|m|h)$")
# Bounds on the lists the CRD's CEL rules walk: without them the API server prices a rule over an unbounded
# list of unbounded strings above its cost budget and refuses the CRD. Far above any real policy (an email
# address has at most 254 characters, RFC 5321).
MAX_LISTED = 1000
_Listed = Annotated[str, Field(max_length=254)]


class Spec(BaseModel):
    """Base for CRD specs: camelCase on the wire, strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, alias_generator=to_camel)


def _vendor_enum(schema: JsonDict) -> None:
    """The CRD's list of vendors is the registry's (tollgate.vendors.VENDORS), read when the schema is built."""
    schema["enum"] = list(extensions())


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
            if not _CURRENCY.fullmatch(v):
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


def _usd(v: object) -> object:
    """Validate a USD amount as written; YAML `0.0083` arrives as a float, whose shortest repr is what was written."""
    if isinstance(v, float):
        v = repr(v)
    if isinstance(v, str | int) and not isinstance(v, bool):
        parse_usd(v)
    return v


class PriceSpec(Spec):
    """Twilio prices for destinations whose number starts with `prefix`; the longest matching prefix wins,
    over Tollgate's defaults too (which cover only +1, US and Canada)."""

    prefix: str = Field(description="E.164 country code or longer prefix, e.g. '+44' or '+1876'.")
    sms_segment_usd: UsdAmount | None = Field(default=None, description="USD per SMS segment.")
    mms_usd: UsdAmount | None = Field(default=None, description="USD per MMS message.")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not PHONE_PREFIX.fullmatch(v):
            raise ValueError(f"{v!r} is not an E.164 prefix like '+44' or '+1876'")
        return v

    @field_validator("sms_segment_usd", "mms_usd", mode="before")
    @classmethod
    def _amounts(cls, v: object) -> object:
        return _usd(v)

    @model_validator(mode="after")
    def _some_price(self) -> PriceSpec:
        if self.sms_segment_usd is None and self.mms_usd is None:
            raise ValueError(f"prices entry {self.prefix!r} sets neither smsSegmentUsd nor mmsUsd")
        return self


class LoopBreakerSpec(Spec):
    """At most `calls` money-moving calls per rolling `per` window, per vault key, whatever they cost:
    an agent stuck in a loop is stopped long before the daily cap (rule 8, answered with 429)."""

    calls: int = Field(ge=1, le=100_000, description="Most money-moving calls allowed in any rolling window.")
    per: str = Field(
        pattern=r"^[1-9][0-9]*(s|m|h)$",
        description="The window: seconds, minutes or hours, e.g. '60s', '1m', '1h' (at most 24h).",
    )
    endpoints: list[EndpointPattern] | None = Field(
        default=None,
        description="Count only calls to these endpoints (e.g. ['POST /v1/refunds']), whatever they cost; "
        "every call with a cost when omitted.",
    )

    @field_validator("per")
    @classmethod
    def _per(cls, v: str) -> str:
        m = _DURATION.fullmatch(v)
        if not m:
            raise ValueError(f"{v!r} is not a duration like '60s', '1m' or '1h'")
        if int(m[1]) * {"s": 1, "m": 60, "h": 3600}[m[2]] > 24 * 3600:
            raise ValueError(f"{v!r} is longer than 24h; the daily cap covers longer spans")
        return v

    @property
    def window_ms(self) -> int:
        m = _DURATION.fullmatch(self.per)
        assert m is not None
        return int(m[1]) * {"s": 1, "m": 60, "h": 3600}[m[2]] * 1000


def _duration_s(v: str) -> int:
    m = _DURATION.fullmatch(v)
    if not m:
        raise ValueError(f"{v!r} is not a duration like '60s', '30m' or '1h'")
    return int(m[1]) * {"s": 1, "m": 60, "h": 3600}[m[2]]


class ApprovalSpec(Spec):
    """A person approves each call above `aboveUsd` before it is forwarded (rule 7b). The call is refused
    with tollgate_approval_required and an approval id; once approved, the agent's retry with the same
    Idempotency-Key and the same parameters passes once, reserved against the cap like any call."""

    above_usd: UsdAmount = Field(description="Calls costing more than this, in USD, need an approval.")
    ttl: str = Field(
        default="30m",
        pattern=r"^[1-9][0-9]*(s|m|h)$",
        description="How long a pending approval waits for a decision, and an approved one for the agent's "
        "retry (counted again from the approval): '30m' when omitted, at most 24h (the vendor keeps an "
        "Idempotency-Key that long).",
    )
    endpoints: list[EndpointPattern] | None = Field(
        default=None,
        description="Only calls to these endpoints need an approval (e.g. ['POST /v1/refunds']); every "
        "call above the threshold when omitted.",
    )

    @field_validator("above_usd", mode="before")
    @classmethod
    def _above(cls, v: object) -> object:
        return _usd(v)

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: str) -> str:
        if _duration_s(v) > 24 * 3600:
            raise ValueError(f"{v!r} is longer than 24h, how long the vendor keeps an Idempotency-Key")
        return v

    @property
    def above_micro_usd(self) -> int:
        return parse_usd(self.above_usd)

    @property
    def ttl_ms(self) -> int:
        return _duration_s(self.ttl) * 1000


# A Kubernetes object name (DNS subdomain), for every reference to another object; also the CRD's pattern.
OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def object_name(v: str, kind: str = "Kubernetes object") -> str:
    """`v` if it is a valid name of a `kind`, else ValueError saying which kind it failed to name."""
    if not OBJECT_NAME.fullmatch(v):
        raise ValueError(f"{v!r} is not a valid {kind} name")
    return v


def time_zone(v: str) -> str:
    """`v` if it names an IANA time zone (whose midnight resets a daily cap), else ValueError."""
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{v!r} is not an IANA time zone") from exc
    return v


class BudgetRef(Spec):
    name: str = Field(description="Name of a SpendBudget in the policy's namespace.")

    @field_validator("name")
    @classmethod
    def _dns(cls, v: str) -> str:
        return object_name(v)


class SpendPolicySpec(Spec):
    """What an agent bound to this policy may do with one vendor, and how much it may spend per day."""

    # A name from the vendor registry, not an enum here: a new vendor is its folder plus one registry entry.
    vendor: str = Field(description="The vendor this policy governs.", json_schema_extra=_vendor_enum)
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
        default=None, description="Stripe only. Customers (cus_…) calls may touch; any customer when omitted."
    )
    connected_accounts: list[_Listed] | None = Field(
        default=None,
        max_length=MAX_LISTED,
        description="Stripe: connected accounts (acct_…) allowed in Stripe-Account or as a transfer destination; "
        "none when omitted. Twilio (required): the account SIDs (AC…) a call may name in its path — the "
        "account whose credentials the VaultKey's Secret holds, and any of its subaccounts.",
    )
    recipients: list[_Listed] | None = Field(
        default=None,
        max_length=MAX_LISTED,
        description="Twilio and Resend. Who messages may go to; anyone when omitted. Twilio: E.164 numbers or "
        "prefixes ('+14155550100', '+1415'). Resend: email domains ('example.com', exact, no subdomains) or "
        "addresses ('ops@example.com'), checked for every to, cc and bcc.",
    )
    prices: list[PriceSpec] | None = Field(
        default=None,
        description="Twilio only. SMS and MMS prices per destination prefix, over the defaults (US and Canada).",
    )
    call_reservation_usd: UsdAmount | None = Field(
        default=None,
        description="Twilio only. What each call created is counted as against the cap (a call's length is "
        "unknown when it is placed); calls are refused when omitted.",
    )
    price_per_email_usd: UsdAmount | None = Field(
        default=None,
        description="Resend only. USD per recipient email sent (to, cc and bcc each count); 0.0009 when omitted.",
    )
    params: list[ParamRule] = Field(
        default_factory=list, description="Parameter rules every matching call must satisfy."
    )
    loop_breaker: LoopBreakerSpec | None = Field(
        default=None,
        description="Most money-moving calls per rolling window (e.g. {calls: 20, per: 1m}), apart from the "
        "dollar cap; none when omitted.",
    )
    approval: ApprovalSpec | None = Field(
        default=None,
        description="Stripe and Resend (whose APIs deduplicate by Idempotency-Key). A person approves each "
        "call above approval.aboveUsd before it is sent (e.g. {aboveUsd: '100', ttl: 30m}); none when omitted.",
    )
    currencies: list[CurrencySpec] = Field(
        default_factory=_default_currencies,
        min_length=1,
        description="Currencies allowed; USD only when omitted.",
    )
    time_zone: str = Field(default="UTC", description="IANA time zone whose midnight resets the daily cap.")
    budget_ref: BudgetRef | None = Field(
        default=None,
        description="A SpendBudget (same namespace) whose daily cap every key on this policy shares with the "
        "keys of the other policies naming it, on top of its own cap; keys are refused while it is missing.",
    )
    expires_at: datetime | None = Field(
        default=None, description="RFC 3339 time after which every key on it is refused."
    )

    @field_validator("vendor", mode="before")
    @classmethod
    def _registered(cls, v: object) -> object:
        names = list(extensions())
        if v not in names:  # worded and typed as pydantic words an enum's refusal
            quoted = [repr(n) for n in names]
            expected = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
            raise PydanticCustomError("enum", "Input should be {expected}", {"expected": expected})
        return v

    @field_validator("daily_cap_usd", "call_reservation_usd", "price_per_email_usd", mode="before")
    @classmethod
    def _amounts(cls, v: object) -> object:
        return _usd(v)

    @field_validator("recipients", mode="before")
    @classmethod
    def _lowercase_recipients(cls, v: object) -> object:
        # Domains compare case-insensitively; phone prefixes have no case.
        return [r.lower() if isinstance(r, str) else r for r in v] if isinstance(v, list) else v

    @field_validator("*")
    @classmethod
    def _vendor_field(cls, v: object, info: ValidationInfo) -> object:
        # Fields some vendors read only are an error on any other vendor's policy, never silently ignored;
        # which vendors read a field, and the shape of its entries, is each vendor's (policy/extension.py).
        vendor = info.data.get("vendor")
        assert info.field_name is not None
        owners = vendors_of(info.field_name)
        if v is None or vendor is None or not owners:
            return v
        if vendor not in owners:
            names = " and ".join(owners)
            raise ValueError(f"{to_camel(info.field_name)} applies to {names} policies only, not {vendor}")
        rule = extension(vendor).items.get(info.field_name)
        if rule is not None and isinstance(v, list):
            for entry in v:
                rule.check(entry)
        return v

    @field_validator("prices")
    @classmethod
    def _unique_prefixes(cls, v: list[PriceSpec] | None) -> list[PriceSpec] | None:
        prefixes = [p.prefix for p in v or []]
        dupes = sorted({p for p in prefixes if prefixes.count(p) > 1})
        if dupes:
            raise ValueError(f"prefix listed twice: {', '.join(dupes)}")
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
        return time_zone(v)

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("expiresAt needs a time zone offset (RFC 3339, e.g. 2026-12-31T00:00:00Z)")
        return v

    @model_validator(mode="after")
    def _vendor_requires(self) -> SpendPolicySpec:
        # e.g. Twilio names an account SID in every path, and the gateway forwards only those listed.
        for name, why in extension(self.vendor).required.items():
            if not getattr(self, name):
                raise ValueError(why)
        return self

    @property
    def daily_cap_micro_usd(self) -> int:
        return parse_usd(self.daily_cap_usd)
