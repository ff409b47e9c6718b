"""SpendBudgetSpec: the shape of `spec` on a tollgate.dev/v1alpha1 SpendBudget. Pure.

A budget is one daily cap shared by every vault key of every SpendPolicy that names it in `budgetRef`
(same namespace), across vendors: each call is reserved against its key's cap and the budget's in one
atomic step (store/lua/commit.lua). The audit alerts at the warning share of the cap (alerts.capWarnPercent, 80 %) and
at the cap, as for a key's own cap.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from tollgate.money import parse_usd
from tollgate.policy.spend_policy import Spec, UsdAmount, _usd, time_zone


class SpendBudgetSpec(Spec):
    """All calls of every key under this budget together, per day, whatever the vendor."""

    daily_cap_usd: UsdAmount = Field(description="Most all keys under this budget may spend per day, in USD.")
    time_zone: str = Field(default="UTC", description="IANA time zone whose midnight resets the budget.")

    @field_validator("daily_cap_usd", mode="before")
    @classmethod
    def _amount(cls, v: object) -> object:
        return _usd(v)

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return time_zone(v)

    @property
    def daily_cap_micro_usd(self) -> int:
        return parse_usd(self.daily_cap_usd)
