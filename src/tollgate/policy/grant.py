"""Grant: the compiled, versioned document ext_authz reads for one vault key. Pure.

A Grant folds the key, its policy and its sealed vendor key into one Redis value, so a call needs a
single read to know everything it may do. The operator (or local mode) rewrites it when any part changes.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from tollgate.policy.rules import EndpointPattern, ParamRule
from tollgate.policy.spend_policy import Mode

GRANT_SCHEMA = 1


class LoopBreaker(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    calls: int
    window_ms: int
    endpoints: list[EndpointPattern] | None = None  # None: every call with a cost counts

    def counts(self, method: str, path: str, cost_micro_usd: int) -> bool:
        """Whether an allowed call takes a slot: without `endpoints`, every call with a cost; with them,
        every call to them, priced or free (a policy that names an endpoint wants its loops stopped)."""
        if self.endpoints is None:
            return cost_micro_usd > 0
        return any(p.matches(method, path) for p in self.endpoints)


class Approval(BaseModel):
    """spec.approval, compiled: which calls wait for a person (rule 7b), and how long an approval lives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    above_micro_usd: int
    ttl_ms: int
    endpoints: list[EndpointPattern] | None = None  # None: every call above the threshold

    def required(self, method: str, path: str, cost_micro_usd: int) -> bool:
        if cost_micro_usd <= self.above_micro_usd:
            return False
        return self.endpoints is None or any(p.matches(method, path) for p in self.endpoints)


def _day_key(time_zone: str, now: datetime) -> str:
    # Every check asks, and time zone offsets are whole seconds, so the UTC second decides the day.
    return _day_key_at(time_zone, int(now.timestamp()))


@functools.lru_cache(maxsize=64)
def _day_key_at(time_zone: str, epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, ZoneInfo(time_zone)).strftime("%Y%m%d")


def _day_ends_at(time_zone: str, now: datetime) -> datetime:
    local = now.astimezone(ZoneInfo(time_zone))
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(ZoneInfo("UTC"))


class GrantBudget(BaseModel):
    """The SpendBudget the key's calls are also reserved against (its own day window and cap)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str  # "namespace/name" of the SpendBudget
    daily_cap_micro_usd: int
    time_zone: str

    def day_key(self, now: datetime) -> str:
        """The budget's current day as yyyymmdd (its own time zone, not the policy's)."""
        return _day_key(self.time_zone, now)

    def day_ends_at(self, now: datetime) -> datetime:
        return _day_ends_at(self.time_zone, now)


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
    # Who messages may go to (E.164 prefixes, email domains or addresses); None: anyone. Defaulted so
    # grants stored before Twilio and Resend existed still load.
    recipients: list[str] | None = None
    # unit ("sms_segment", "email", …) → destination prefix ("+1", "+44", "" for any) → micro-USD per unit;
    # None marks a prefix deliberately left unpriced (a call there is refused, not priced by a shorter prefix).
    prices: dict[str, dict[str, int | None]] = {}
    loop_breaker: LoopBreaker | None = None  # defaulted so grants stored before it existed still load
    approval: Approval | None = None  # likewise
    time_zone: str
    expires_at: datetime | None  # the earlier of the key's and the policy's
    expired_by: str | None  # "VaultKey" or "SpendPolicy": whose expiry applies
    suspended: bool
    # The shared budget the key is under, if any; defaulted so grants stored before budgets still load.
    budget: GrantBudget | None = None

    @property
    def budget_id(self) -> str | None:
        return self.budget.id if self.budget is not None else None

    # The cap's window: the policy's day, read by the decision (what it reserves against) and by the
    # status writer (what it reports), so both count the same day.
    def day_key(self, now: datetime) -> str:
        """The policy's current day as yyyymmdd: the window the cap counts in."""
        return _day_key(self.time_zone, now)

    def day_ends_at(self, now: datetime) -> datetime:
        """The next midnight in the policy's time zone, in UTC: when the cap resets."""
        return _day_ends_at(self.time_zone, now)

    def usd_rate(self, currency: str) -> Decimal | None:
        rate = self.usd_rates.get(currency.lower())
        return Decimal(rate) if rate is not None else None

    def unit_price(self, unit: str, destination: str) -> int | None:
        """Micro-USD for one `unit` sent to `destination`, by the longest matching prefix; None: unpriced."""
        table = self.prices.get(unit, {})
        matches = [prefix for prefix in table if destination.startswith(prefix)]
        return table[max(matches, key=len)] if matches else None

    def allows_recipient(self, recipient: str) -> bool:
        """A phone number is in scope under any listed prefix of it; an email address when its domain,
        or the address itself, is listed. Domains match exactly: a subdomain must be listed on its own."""
        if self.recipients is None:
            return True
        recipient = recipient.lower()
        domain = recipient.rpartition("@")[2] if "@" in recipient else None
        for entry in self.recipients:
            if domain is not None and entry in (domain, recipient):
                return True
            if domain is None and entry.startswith("+") and recipient.startswith(entry):
                return True
        return False
