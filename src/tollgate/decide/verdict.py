"""Verdict = Allow | Deny | Pending. Pure values; denials are never exceptions."""

from __future__ import annotations

from tollgate.decide.rules import Rule
from tollgate.record import record


@record
class Deny:
    rule: Rule
    message: str
    param: str | None = None
    retry_after_s: int | None = None  # when trying again may succeed (the loop breaker's window)

    @property
    def status(self) -> int:
        return self.rule.status


@record
class Allow:
    cost_micro_usd: int  # what to reserve against the cap before forwarding
    shadow_denial: Deny | None = None  # shadow mode: what enforcement would have answered
    # The call reuses an idempotency key already counted: the vendor replays its first result, so
    # nothing more is reserved (see store/lua/commit.lua).
    replay: bool = False


@record
class Pending:
    """Rules 1–5 passed; the rest needs facts that may require reading vendor objects."""


Verdict = Allow | Deny | Pending
