"""The store's interfaces over Redis, one per user (Check, settlement, reconcile, status, …), each method one
round trip or one Lua script."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from enum import Enum, StrEnum
from typing import Any, Protocol

from tollgate.policy.grant import Grant
from tollgate.record import record


class CommitStatus(Enum):
    COMMITTED = 1  # the grant is current and the cost (if any) is reserved
    OVER_CAP = 0  # the grant is current but the cost does not fit under the cap
    STALE = -1  # the grant changed or was revoked since it was read: decide again
    REPLAY = 2  # a retry of a call already counted under the same idempotency key: nothing reserved
    LOOP_BREAKER = 3  # the key made its most counted calls in the window: retry_after_ms says when
    KEY_REUSED = 4  # the idempotency key was first used with other parameters
    UNLEDGERED = 5  # the key's spend is not (yet) rebuilt from the audit ledger in this Redis: no money call
    APPROVAL_PENDING = 6  # the call needs an approval no person has given yet (created now, or earlier)
    APPROVAL_REJECTED = 7  # a person rejected the approval this call needs
    APPROVAL_EXPIRED = 8  # the approval expired before it was given, or before the approved call came
    APPROVAL_USED = 9  # the approval already let its one call through
    APPROVALS_WAITING = 10  # no approval created: the key has the most waiting already
    OVER_BUDGET = 11  # under the key's cap, but the cost does not fit under its shared budget's cap


@record
class BudgetCharge:
    """The shared budget (SpendBudget) a key's call is reserved against besides the key's own cap."""

    budget_id: str  # "namespace/name"
    day: str  # the budget's day (yyyymmdd in its own time zone)
    cap_micro_usd: int = 0  # read by commit only


@record
class Commit:
    status: CommitStatus
    spent_micro_usd: int  # after the reservation when committed, as it stands when over the cap
    reservation_id: str | None
    retry_after_ms: int = 0
    budget_spent_micro_usd: int = 0  # the budget's spend, like spent_micro_usd (0 without a budget)
    # With Limits.approval_id: whether this commit created the pending approval, when the approval
    # expires, and who decided it (for the rejection's message).
    approval_created: bool = False
    approval_expires_ms: int = 0
    approval_decided_by: str = ""


@record
class Limits:
    """What commit.lua checks besides the cap, for one call.

    `fingerprint` (with `idempotency_key`) identifies the request behind an idempotency key, so a retry
    is recognised and a reuse with other parameters refused; `breaker_calls` > 0 applies the loop
    breaker over `breaker_window_ms`. `approval_id` (with the idempotency key) makes the call wait for a
    person's approval (rule 7b): created pending with `approval_details` (JSON, for the person deciding),
    alive `approval_ttl_ms`, and consumed in the same step that reserves."""

    idempotency_key: str | None = None
    fingerprint: str = ""
    breaker_calls: int = 0
    breaker_window_ms: int = 0
    approval_id: str = ""
    approval_ttl_ms: int = 0
    approval_details: str = ""
    approval_max_waiting: int = 10  # the key's approvals waiting at once; no new one past it


NO_LIMITS = Limits()


@record
class LastDecision:
    rule: str
    decision_id: str
    at_ms: int


# The Store is split by who uses it, so each runtime is typed against (and a fake need implement) only
# what it calls. RedisStore implements every part; `Store` is their sum.


class CheckStore(Protocol):
    """ext_authz's Check: who a vault token is, the key's grant, and the atomic commit."""

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
        limits: Limits = NO_LIMITS,
        budget: BudgetCharge | None = None,
    ) -> Commit: ...
    async def approval_of_request(
        self, key_id: str, request: str, budget_id: str | None = None
    ) -> ApprovalRecord | None:
        """The approval made for `request` (fingerprint:cost) by this key, under whatever idempotency key;
        `budget_id`: the key's shared budget (its grant's), which names the slot the approval sits in."""
        ...


@record
class Closing:
    """One reservation the audit closes: given back (`release`), or kept at `actual_micro_usd`."""

    key_id: str
    vendor: str
    day: str
    reservation_id: str
    release: bool
    actual_micro_usd: int = 0  # settled: what stays counted
    at_ms: int = 0  # settled: the call's time (see settle)
    idempotency_key: str | None = None  # released: the call's key, forgotten with it
    budget: BudgetCharge | None = None


class SettleStore(Protocol):
    """The audit's settlement of what Check reserved: to the vendor's amount, or released."""

    async def close_reservations(self, closings: Sequence[Closing]) -> None:
        """Each one as `release` or `settle` would, all in few round trips; on failure some may be closed
        and others not, and closing one again changes nothing."""
        ...

    async def release(
        self,
        key_id: str,
        vendor: str,
        day: str,
        reservation_id: str,
        idempotency_key: str | None = None,
        *,
        budget: BudgetCharge | None = None,
    ) -> int: ...
    async def settle(
        self,
        key_id: str,
        vendor: str,
        day: str,
        reservation_id: str,
        actual_micro_usd: int,
        *,
        at_ms: int = 0,
        budget: BudgetCharge | None = None,
    ) -> int: ...


class ClaimStore(Protocol):
    """The audit's alerts: one sender per alert across every replica."""

    async def claim_once(self, name: str, ttl_s: int) -> bool:
        """True for the first caller in `ttl_s` (across every replica), False after."""
        ...


class GrantIndex(Protocol):
    """Which keys hold a grant, and what it is: what reconcile and the audit's ledger sweep compare against."""

    async def grant(self, key_id: str) -> Grant | None: ...
    async def grant_ids(self) -> set[str]: ...


class GrantStore(GrantIndex, Protocol):
    """Reconcile's writes: grants put and revoked to match the cluster (or local mode's files)."""

    async def put_grant(self, grant: Grant) -> None: ...
    async def revoke(self, key_id: str) -> bool: ...


class IngestStore(SettleStore, GrantIndex, Protocol):
    """The audit ingester: settles reservations, and its ledger sweep reads which keys hold grants."""


class StatusStore(Protocol):
    """The operator's status reads: a key's grant, its spend today (in its budget's slot when it is under
    one), its last decision, and a shared budget's spend today."""

    async def grant(self, key_id: str) -> Grant | None: ...
    async def spent(self, key_id: str, vendor: str, day: str, budget_id: str | None = None) -> int: ...
    async def budget_spent(self, budget_id: str, day: str) -> int: ...
    async def last_decision(self, key_id: str, budget_id: str | None = None) -> LastDecision | None: ...


class Lifecycle(Protocol):
    """Whoever owns the connection: readiness pings it, shutdown closes it."""

    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class ApprovalState(StrEnum):
    PENDING = "pending"  # waiting for a person
    APPROVED = "approved"  # the agent's retry with the same Idempotency-Key and parameters will pass, once
    REJECTED = "rejected"
    USED = "used"  # the approved call was committed (reserved and forwarded)
    EXPIRED = "expired"  # pending or approved past its expiry


@record
class ApprovalRecord:
    """One approval as Redis holds it (store/keys.py: approval). `details` describes the call for the person
    deciding: policy_id, vendor, method, path, endpoint, idempotency_key, accounts, params (redacted)."""

    id: str
    key_id: str
    stored_state: ApprovalState
    cost_micro_usd: int
    created_ms: int
    expires_ms: int
    details: dict[str, Any]
    decided_by: str = ""
    decided_ms: int = 0
    used_ms: int = 0
    budget_id: str | None = None  # the key's shared budget when the record was made (names its slot)

    def state(self, now_ms: int) -> ApprovalState:
        """What the data plane would answer now: pending or approved past the expiry is expired."""
        live = self.stored_state in (ApprovalState.PENDING, ApprovalState.APPROVED)
        return ApprovalState.EXPIRED if live and now_ms >= self.expires_ms else self.stored_state


class Approvals(Protocol):
    """What the operator and `tollgate approve|reject` need: read approvals, and decide one atomically."""

    async def approval(self, approval_id: str) -> ApprovalRecord | None: ...
    async def approvals(self) -> list[ApprovalRecord]:
        """Every approval in the index; an entry whose record has aged out is dropped from it."""
        ...

    async def decide_approval(
        self, approval_id: str, state: ApprovalState, by: str, at_ms: int
    ) -> tuple[bool, ApprovalRecord | None]:
        """Move a pending approval to approved or rejected (or a live one past its expiry to expired),
        atomically, and log the decision for the audit (ApprovalLog); (False, the record as it stands)
        when it is not in a state that allows it."""
        ...

    async def forget_approval(self, approval_id: str) -> None:
        """Drop it from the index (its record ages out by its own TTL)."""
        ...


@record
class ApprovalEvent:
    """One decision on an approval, as the audit keeps it (tollgate_approval_events)."""

    event_id: str  # its position in the log, increasing
    approval_id: str
    key_id: str
    policy_id: str
    state: str  # approved | rejected | expired
    by: str
    at_ms: int
    cost_micro_usd: int


class ApprovalLog(Protocol):
    """What the audit ingester reads to keep every approval decision in the SQL store."""

    async def approval_events(self, after: str, count: int = 500) -> list[ApprovalEvent]:
        """Decisions logged after position `after` ('0' for the start), oldest first."""
        ...


class Store(
    CheckStore, SettleStore, ClaimStore, GrantStore, StatusStore, Lifecycle, Approvals, ApprovalLog, Protocol
):
    """Every part at once: what RedisStore implements and a process that builds one holds."""


@record
class LedgerCopy:
    """One key's share of the audit ledger, as Redis must hold it before money calls pass again."""

    key_id: str
    since_ms: int  # when the rebuild started: calls made before it and settled later are adopted
    spend: dict[tuple[str, str], int]  # (vendor, day) → micro-USD counted
    calls: list[tuple[str, int]] = field(default_factory=list)  # loop breaker: (member, ms) still in window
    window_ms: int = 0


@record
class BudgetLedgerCopy:
    """One shared budget's share of the audit ledger: the calls whose rows name it, per budget day."""

    budget_id: str
    since_ms: int
    spend: dict[str, int]  # budget day → micro-USD counted


class Ledger(Protocol):
    """What the audit ingester needs to keep Redis a copy of the ledger (the audit store)."""

    async def unmarked(self, key_ids: set[str]) -> set[str]:
        """The keys among `key_ids` whose spend this Redis does not hold from the ledger."""
        ...

    async def rebuild(self, copy: LedgerCopy) -> bool:
        """Write the key's spend and mark it, unless already marked; True when this call wrote it."""
        ...

    async def budget_ids(self) -> set[str]:
        """Every shared budget a grant was written under (whose spend the ledger sweep keeps)."""
        ...

    async def unmarked_budgets(self, budget_ids: set[str]) -> set[str]:
        """The budgets among `budget_ids` whose spend this Redis does not hold from the ledger."""
        ...

    async def rebuild_budget(self, copy: BudgetLedgerCopy) -> bool:
        """Write the budget's spend and mark it, unless already marked; True when this call wrote it."""
        ...

    async def ledger_hint(self) -> str | None:
        """The Redis server the audit last checked the marks against (its run id), if any."""
        ...

    async def set_ledger_hint(self, server_id: str) -> None: ...

    async def server_id(self) -> str:
        """This Redis server's run id: new after every restart, and another one after a failover."""
        ...

    async def forget_marks(self, key_ids: set[str]) -> None:
        """Drop the keys' ledger markers (and their budgets'), so their spend is rebuilt (never lowered) before money passes."""
        ...

    async def settle_checkpoint(self, source: str) -> str | None:
        """Where settlement of the access log `source` got to (opaque to the store)."""
        ...

    async def save_settle_checkpoint(self, source: str, position: str) -> None: ...
