"""Store: the narrow, async interface over Redis. Each method is one round trip or one Lua script."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from tollgate.policy.grant import Grant


class CommitStatus(Enum):
    COMMITTED = 1  # the grant is current and the cost (if any) is reserved
    OVER_CAP = 0  # the grant is current but the cost does not fit under the cap
    STALE = -1  # the grant changed or was revoked since it was read: decide again


@dataclass(frozen=True)
class Commit:
    status: CommitStatus
    spent_micro_usd: int  # after the reservation when committed, as it stands when over the cap
    reservation_id: str | None


@dataclass(frozen=True)
class LastDecision:
    rule: str
    decision_id: str
    at_ms: int


class Store(Protocol):
    # data plane
    async def key_for_token(self, token_sha256: str) -> str | None: ...
    async def grant(self, key_id: str) -> Grant | None: ...
    async def commit(
        self,
        key_id: str,
        version: str,
        vendor: str,
        day: str,
        amount_micro_usd: int,
        cap_micro_usd: int,
        *,
        rule: str = "tollgate_allowed",
        decision_id: str = "",
        at_ms: int = 0,
    ) -> Commit: ...
    async def release(self, key_id: str, vendor: str, day: str, reservation_id: str) -> int: ...
    async def settle(
        self, key_id: str, vendor: str, day: str, reservation_id: str, actual_micro_usd: int
    ) -> int: ...
    async def spent(self, key_id: str, vendor: str, day: str) -> int: ...
    async def last_decision(self, key_id: str) -> LastDecision | None: ...
    async def claim_once(self, name: str, ttl_s: int) -> bool:
        """True for the first caller in `ttl_s` (across every replica), False after."""
        ...

    # reconcile
    async def put_grant(self, grant: Grant) -> None: ...
    async def revoke(self, key_id: str) -> bool: ...
    async def grant_ids(self) -> set[str]: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...
