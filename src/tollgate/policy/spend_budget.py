"""SpendBudgetSpec: the shape of `spec` on a tollgate.dev/v1alpha1 SpendBudget. Pure.

A budget is one daily cap shared by every vault key of every SpendPolicy that names it in `budgetRef`
(same namespace), across vendors: each call is reserved against its key's cap and the budget's in one
atomic step (store/lua/commit.lua).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from tollgate.money import parse_usd
from tollgate.policy.spend_policy import Spec, UsdAmount, _usd


class SpendBudgetSpec(Spec):
    """All calls of every key under this budget together, per day, whatever the vendor."""

    daily_cap_usd: UsdAmount = Field(description="Most all keys under this budget may spend per day, in USD.")
    time_zone: str = Field(default="UTC", description="IANA time zone whose midnight resets the budget.")
    alert_at_percent: list[int] = Field(
        default_factory=lambda: [80, 100],
        min_length=1,
        max_length=10,
        description="Alert when the day's spend reaches these shares of the cap, in percent (80 and 100 when "
        "omitted).",
    )

    @field_validator("daily_cap_usd", mode="before")
    @classmethod
    def _amount(cls, v: object) -> object:
        return _usd(v)

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{v!r} is not an IANA time zone") from exc
        return v

    @field_validator("alert_at_percent")
    @classmethod
    def _percents(cls, v: list[int]) -> list[int]:
        if any(p < 1 or p > 100 for p in v):
            raise ValueError("alertAtPercent entries must be between 1 and 100")
        return sorted(set(v))

    @property
    def daily_cap_micro_usd(self) -> int:
        return parse_usd(self.daily_cap_usd)
