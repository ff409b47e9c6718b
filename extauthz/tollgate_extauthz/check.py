"""The phase sequence, and the only place where I/O and the decision meet:

identify (cache, else store) → decide rules 1–5 (pure) → facts (vendor, reading objects when it must)
→ decide rules 6–7 (pure) → does it need a person's approval (7b, pure) → commit (store, atomic: grant
still current, idempotent retry, approval, loop breaker, reserve) → the commit's answer as a verdict (pure).
"""

from __future__ import annotations

import functools
import json
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from tollgate.credentials import CredentialBox, token_digest
from tollgate.decide import engine
from tollgate.decide.call import Call
from tollgate.decide.engine import Subject
from tollgate.decide.idempotency import approval_id, fingerprint
from tollgate.decide.rules import Rule
from tollgate.decide.verdict import Allow, Deny, Pending
from tollgate.policy.grant import Grant
from tollgate.policy.spend_policy import Mode
from tollgate.record import record
from tollgate.store.base import (
    NO_LIMITS,
    ApprovalState,
    BudgetCharge,
    CheckStore,
    Commit,
    CommitStatus,
    Limits,
)
from tollgate.vendors.base import Endpoint, Facts, Found, Idempotent, Invalid, Need, Unpriced, Vendor
from tollgate.vendors.redaction import audit_json
from tollgate_extauthz.lookup import Lookup, ObjectNotFound
from tollgate_extauthz.request import Incoming

MAX_LOOKUP_ROUNDS = 4
MAX_COMMIT_ATTEMPTS = 3
ALLOWED = Rule.ALLOWED.value  # read per call: an Enum member's .value runs Python code each time
UNLEDGERED = "this key's spend today is being restored from the audit ledger; reads still pass"


@record
class Decision:
    id: str
    verdict: Allow | Deny
    grant: Grant | None = None
    endpoint: Endpoint | None = None
    facts: Facts | None = None
    reservation_id: str | None = None
    day: str | None = None
    spent_micro_usd: int | None = None
    vendor_key: str | None = None  # the real key, only on Allow; never logged
    key_id: str | None = None  # known from the token even when the grant is gone (revoked)
    approval_id: str | None = None  # the approval this call waited for (pending) or used (rule 7b)
    approval_created: bool = False  # this call created that approval (pending)
    budget_day: str | None = None  # the shared budget's day the reservation was charged to, if any
    budget_spent_micro_usd: int | None = None  # the budget's spend after this call (or at its refusal)

    @property
    def allowed(self) -> bool:
        return isinstance(self.verdict, Allow)


class GrantCache:
    """Process-local copies of grants, so a warm call costs one Redis round trip (the commit).

    Safe because nothing is allowed on a cached grant alone: the commit script checks the grant's
    version atomically with the reservation, and a mismatch (revoke, rotate, policy change) sends the
    check back to Redis. Token → key id never changes once minted, so it is cached as is."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._keys: OrderedDict[str, str] = OrderedDict()
        self._grants: OrderedDict[str, Grant] = OrderedDict()
        self._plain: OrderedDict[str, str] = OrderedDict()

    def key_for(self, digest: str) -> str | None:
        return self._keys.get(digest)

    def remember_key(self, digest: str, key_id: str) -> None:
        self._put(self._keys, digest, key_id)

    def grant(self, key_id: str) -> Grant | None:
        return self._grants.get(key_id)

    def remember_grant(self, grant: Grant) -> None:
        self._put(self._grants, grant.key_id, grant)

    def forget_grant(self, key_id: str) -> None:
        self._grants.pop(key_id, None)

    def vendor_key(self, grant: Grant, box: CredentialBox) -> str:
        """The grant's vendor key, opened once per sealed value (decrypting costs more than the rest of a check)."""
        if (plain := self._plain.get(grant.credential)) is None:
            plain = box.open(grant.credential)
            self._put(self._plain, grant.credential, plain)
        return plain

    def _put(self, d: OrderedDict[str, Any], k: str, v: Any) -> None:
        d[k] = v
        d.move_to_end(k)
        while len(d) > self._size:
            d.popitem(last=False)


class Checker:
    def __init__(
        self,
        store: CheckStore,
        box: CredentialBox,
        lookup: Lookup,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cache: GrantCache | None = None,
        redact: frozenset[str] = frozenset(),
    ) -> None:
        self._store, self._box, self._lookup, self._clock = store, box, lookup, clock
        self._cache = cache if cache is not None else GrantCache()
        self._redact = redact  # parameter names an approval's record never holds, beyond the vendor's own

    async def check(self, incoming: Incoming) -> Decision:
        did = "dec_" + secrets.token_hex(8)
        call, vendor = incoming.call, incoming.vendor
        if vendor is None:
            return Decision(did, engine.unknown_vendor(call.vendor))
        digest = token_digest(incoming.token) if incoming.token else None
        key_id = await self._key_id(digest)
        endpoint = vendor.match(call.method, call.path)
        accounts = vendor.accounts(endpoint, call.params, call.headers)
        # A cached grant may be stale: the commit says so, and the call is decided again from Redis.
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            grant = await self._grant(key_id, cached=attempt == 0)
            now = self._clock()
            subject = Subject(call, grant, digest, key_id is not None, endpoint, accounts, now)
            decided = await self._decide(did, subject, vendor)
            if isinstance(decided, Decision):  # decided without needing the grant to be current
                return replace(decided, key_id=key_id)
            verdict, facts = decided
            assert grant is not None
            aid = None
            if isinstance(verdict, Allow) and engine.needs_approval(grant, call, verdict):
                verdict, aid = await self._approval(grant, call, vendor, verdict, accounts, now)
            cost = verdict.cost_micro_usd if isinstance(verdict, Allow) else 0
            day = grant.day_key(now)
            limits = _limits(grant, call, vendor, accounts, cost) if _limited(verdict) else NO_LIMITS
            if aid is not None:
                assert grant.approval is not None and limits.idempotency_key is not None
                details = self._details(grant, incoming, vendor, endpoint, accounts, facts, did)
                limits = replace(
                    limits,
                    approval_id=aid,
                    approval_ttl_ms=grant.approval.ttl_ms,
                    approval_details=details,
                    approval_max_waiting=engine.MAX_WAITING_APPROVALS,
                )
            charge = budget_charge(grant, now)
            c = await self._store.commit(
                grant.key_id,
                grant.version,
                grant.vendor,
                day,
                cost,
                grant.daily_cap_micro_usd,
                rule=verdict.rule.value if isinstance(verdict, Deny) else ALLOWED,
                decision_id=did,
                at_ms=int(now.timestamp() * 1000),
                limits=limits,
                budget=charge,
            )
            if c.status is CommitStatus.STALE:
                self._cache.forget_grant(grant.key_id)
                continue
            if c.status is CommitStatus.UNLEDGERED:  # Redis lost data: spend is being rebuilt from the audit
                return self._finish(did, engine.unavailable(UNLEDGERED), grant, endpoint)
            if isinstance(verdict, Allow):
                verdict = _answer(grant, verdict, c, call, now, aid)
            if c.status is CommitStatus.APPROVALS_WAITING:
                aid = None  # none was created: the audit row and the alerts must not name one
            # One Decision, built once (dataclasses.replace costs as much as building it again).
            return Decision(
                did,
                verdict,
                grant,
                endpoint,
                facts,
                reservation_id=c.reservation_id,
                day=day,
                spent_micro_usd=c.spent_micro_usd,
                vendor_key=self._vendor_key(verdict, grant),
                key_id=key_id,
                approval_id=aid,
                approval_created=c.approval_created,
                budget_day=charge.day if charge is not None and c.reservation_id else None,
                budget_spent_micro_usd=c.budget_spent_micro_usd if charge is not None else None,
            )
        return self._finish(did, engine.unavailable("the grant kept changing"), None, endpoint)

    async def _key_id(self, digest: str | None) -> str | None:
        if digest is None:
            return None
        if (key_id := self._cache.key_for(digest)) is not None:
            return key_id
        key_id = await self._store.key_for_token(digest)
        if key_id is not None:
            self._cache.remember_key(digest, key_id)
        return key_id

    async def _grant(self, key_id: str | None, *, cached: bool) -> Grant | None:
        if key_id is None:
            return None
        if cached and (g := self._cache.grant(key_id)) is not None:
            return g
        g = await self._store.grant(key_id)
        if g is None:
            self._cache.forget_grant(key_id)
        else:
            self._cache.remember_grant(g)
        return g

    async def _decide(
        self, did: str, subject: Subject, vendor: Vendor
    ) -> Decision | tuple[Allow | Deny, Facts | None]:
        """Rules 1–7, reading vendor objects when the vendor module needs them. A Decision is final
        (no grant to commit against); a (verdict, facts) pair still has to be committed."""
        grant, call, endpoint = subject.grant, subject.call, subject.endpoint
        verdict = engine.decide(subject)
        if grant is None:
            assert isinstance(verdict, Deny)
            return Decision(did, verdict, None, endpoint)
        if not isinstance(verdict, Pending):
            return verdict, None
        found = Found()
        facts: Facts | Need | Invalid | Unpriced = Need(())
        for _ in range(MAX_LOOKUP_ROUNDS):
            facts = vendor.facts(endpoint, call.params, call.headers, found, grant.customers is not None)
            if not isinstance(facts, Need):
                break
            try:
                await self._lookup.fetch(vendor, grant, call.headers, facts, found)
            except ObjectNotFound as nf:
                return engine.object_not_found(nf.ref.collection, nf.ref.id), None
        if isinstance(facts, Need):
            return engine.unavailable("objects referenced too deeply"), None
        final = engine.decide_from_facts(subject, facts)
        return final, facts if isinstance(facts, Facts) else None

    async def _approval(
        self, grant: Grant, call: Call, vendor: Vendor, allow: Allow, accounts: frozenset[str], now: datetime
    ) -> tuple[Allow | Deny, str | None]:
        """Rule 7b from the request: the approval the call must have (its id, for the commit to read,
        create or consume), or the verdict when there can be none (no idempotency key; a shadow policy
        asks nobody)."""
        idem = (
            cast(Idempotent, vendor).idempotency_key(call.method, call.headers)
            if _idempotent(type(vendor))
            else None
        )
        if idem is None:
            return engine.approval_needs_key(grant, allow), None
        if grant.mode is Mode.SHADOW:
            return engine.approval_required(grant, allow), None
        # The same request under another idempotency key (an SDK or an agent's tool makes a new one per
        # call) is the same request: it waits for, is refused by, or uses the approval already asked
        # for. Once that one is used or expired, the request is asked for anew under this key.
        request = f"{fingerprint(call, accounts)}:{allow.cost_micro_usd}"
        linked = await self._store.approval_of_request(grant.key_id, request, grant.budget_id)
        if linked is not None and linked.state(int(now.timestamp() * 1000)) in _LINKED:
            return allow, linked.id
        return allow, approval_id(grant.key_id, idem)

    def _details(
        self,
        grant: Grant,
        incoming: Incoming,
        vendor: Vendor,
        endpoint: Endpoint,
        accounts: frozenset[str],
        facts: Facts | None,
        decision_id: str,
    ) -> str:
        """What the person deciding an approval is shown of the call: redacted as the audit row is."""
        call = incoming.call
        secrets_ = (incoming.token or "", self._cache.vendor_key(grant, self._box))
        return json.dumps(
            {
                "policy_id": grant.policy_id,
                "vendor": call.vendor,
                "method": call.method,
                "path": call.path,
                "endpoint": endpoint.name,
                "idempotency_key": call.idempotency_key,
                "accounts": sorted(accounts),
                "customers": sorted(facts.customers | facts.recipients) if facts else [],
                "amount_minor": facts.cost.amount if facts and facts.cost else None,
                "currency": facts.cost.currency if facts and facts.cost else None,
                "params": json.loads(audit_json(call.params, vendor.redacted | self._redact, secrets_)),
                "decision_id": decision_id,
                "agent_run_id": call.agent_run_id,
            },
            separators=(",", ":"),
        )

    def _finish(
        self,
        did: str,
        verdict: Allow | Deny | Pending,
        grant: Grant | None,
        endpoint: Endpoint | None,
        facts: Facts | None = None,
        reservation_id: str | None = None,
        day: str | None = None,
        spent: int | None = None,
    ) -> Decision:
        assert not isinstance(verdict, Pending)
        vendor_key = self._vendor_key(verdict, grant)
        return Decision(did, verdict, grant, endpoint, facts, reservation_id, day, spent, vendor_key)

    def _vendor_key(self, verdict: Allow | Deny, grant: Grant | None) -> str | None:
        return self._cache.vendor_key(grant, self._box) if isinstance(verdict, Allow) and grant else None


def budget_charge(grant: Grant, now: datetime) -> BudgetCharge | None:
    """The shared budget the call is reserved against too: its id, its day (its own time zone) and cap."""
    b = grant.budget
    return BudgetCharge(b.id, b.day_key(now), b.daily_cap_micro_usd) if b is not None else None


def _limited(verdict: Allow | Deny) -> bool:
    # Only a call enforcement lets through can be a replay or take a loop-breaker slot.
    return isinstance(verdict, Allow) and verdict.shadow_denial is None


def _limits(grant: Grant, call: Call, vendor: Vendor, accounts: frozenset[str], cost: int) -> Limits:
    """What commit.lua checks besides the cap: retries of a call with a cost (a free one reserves
    nothing to count twice), and the loop breaker for the calls it counts (LoopBreaker.counts)."""
    idempotent = cost and _idempotent(type(vendor))
    idem = cast(Idempotent, vendor).idempotency_key(call.method, call.headers) if idempotent else None
    lb = grant.loop_breaker
    counted = lb is not None and lb.counts(call.method, call.path, cost)
    return Limits(
        idempotency_key=idem,
        fingerprint=fingerprint(call, accounts) if idem else "",
        breaker_calls=lb.calls if lb is not None and counted else 0,
        breaker_window_ms=lb.window_ms if lb is not None and counted else 0,
    )


@functools.cache
def _idempotent(kind: type) -> bool:
    # isinstance() against a runtime Protocol walks its members on every call; a vendor's class is fixed.
    return issubclass(kind, Idempotent)


_LINKED = frozenset({ApprovalState.PENDING, ApprovalState.APPROVED, ApprovalState.REJECTED})


def _answer(
    grant: Grant, allow: Allow, c: Commit, call: Call, now: datetime, aid: str | None = None
) -> Allow | Deny:
    """The commit's answer as the verdict: rules 7b, 8 and 9, and retries under an idempotency key."""
    if aid is not None:
        expires = datetime.fromtimestamp(c.approval_expires_ms / 1000, UTC) if c.approval_expires_ms else None
        if c.status is CommitStatus.APPROVAL_PENDING:
            return engine.approval_required(grant, allow, aid, expires)
        if c.status is CommitStatus.APPROVAL_REJECTED:
            return engine.approval_rejected(grant, aid, c.approval_decided_by)
        if c.status is CommitStatus.APPROVAL_EXPIRED:
            return engine.approval_expired(grant, aid)
        if c.status is CommitStatus.APPROVAL_USED:
            return engine.approval_used(grant, aid)
        if c.status is CommitStatus.APPROVALS_WAITING:
            return engine.approvals_waiting(grant, allow, engine.MAX_WAITING_APPROVALS)
    if c.status is CommitStatus.REPLAY:
        return engine.replayed(allow)
    if c.status is CommitStatus.KEY_REUSED:
        return engine.key_reused(grant, call.idempotency_key or "")
    if c.status is CommitStatus.LOOP_BREAKER:
        return engine.loop_broken(grant, c.retry_after_ms, now)
    if c.status is CommitStatus.OVER_BUDGET:
        return engine.over_budget(grant, allow, c.budget_spent_micro_usd, now)
    reserved = c.status is CommitStatus.COMMITTED
    return engine.after_reserve(grant, allow, reserved, c.spent_micro_usd, now)
