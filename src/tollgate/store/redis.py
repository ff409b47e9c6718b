"""RedisStore: the one Store implementation. Driver errors become StoreUnavailable, never a pass."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from importlib import resources
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from tollgate.errors import StoreUnavailable
from tollgate.policy.grant import Grant
from tollgate.store import keys
from tollgate.store.autopipeline import AutoPipeline, Send, pipelined, run_scripts
from tollgate.store.base import (
    NO_LIMITS,
    ApprovalEvent,
    ApprovalRecord,
    ApprovalState,
    BudgetCharge,
    BudgetLedgerCopy,
    Closing,
    Commit,
    CommitStatus,
    LastDecision,
    LedgerCopy,
    Limits,
)
from tollgate.store.connection import connect
from tollgate.store.link import Link

T = TypeVar("T")
# Counters and reservations outlive their day by one, so a late settlement still finds them.
DAY_TTL_S = 2 * 24 * 3600
RETIRED_TOKEN_TTL_S = 7 * 24 * 3600
# Stripe prunes idempotency keys after at least 24 h; a retry later than that is a new call there too.
IDEMPOTENCY_TTL_S = 24 * 3600
# An approval record outlives its expiry by a day, so a late retry is told "expired" or "used" (not asked
# to wait for a new approval) and the operator can mirror the final state.
APPROVAL_KEPT_S = 24 * 3600
# The decisions log is read by the audit within seconds; the cap only bounds it while the audit is away.
APPROVALS_LOG_MAX = 100_000


def _script(name: str) -> str:
    return resources.files("tollgate.store").joinpath("lua", name).read_text()


class RedisStore:
    """`audited`: the audit ingester keeps the ledger and marks each key once Redis holds its spend from
    it (money calls wait for the mark). Without an audit, Redis is the only copy of spend: grants are
    marked as they are written, and spend is lost with Redis's data. `replica_acks` > 0: a reservation
    passes only once that many replicas hold it (WAIT), so a failover cannot undo it."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        audited: bool = True,
        replica_acks: int = 0,
        replica_ack_timeout_ms: int = 50,
        autopipeline: bool = True,
    ) -> None:
        self._r = client
        self.audited = audited
        self._acks = replica_acks
        self._ack_timeout_ms = replica_ack_timeout_ms
        self._commit = client.register_script(_script("commit.lua"))
        self._release = client.register_script(_script("release.lua"))
        self._settle = client.register_script(_script("settle.lua"))
        self._rebuild = client.register_script(_script("rebuild.lua"))
        self._approval = client.register_script(_script("approval.lua"))
        self._move_out_lua = client.register_script(_script("move_out.lua"))
        self._move_in_lua = client.register_script(_script("move_in.lua"))
        # One connection of our own for the hot round trips (store/link.py): the commits and settlement's
        # pipelines. None on a cluster, whose pipelines split by node and retry by slot, and wherever
        # redis-py alone can connect (Sentinel, TLS): redis-py's pipeline sends them there.
        self._link = None if isinstance(client, RedisCluster) else Link.for_client(client)
        self._send: Send = self._link.round_trip if self._link is not None else partial(pipelined, client)
        # Concurrent commits share round trips (store/autopipeline.py). Not on a cluster, nor with
        # replica_acks, whose WAIT must follow its own script.
        self._commit_pipelined = (
            AutoPipeline(client, self._commit, send=self._send)
            if autopipeline and not replica_acks and not isinstance(client, RedisCluster)
            else None
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout_s: float = 0.5,
        max_connections: int = 64,
        audited: bool = True,
        replica_acks: int = 0,
        replica_ack_timeout_ms: int = 50,
        autopipeline: bool = True,
    ) -> RedisStore:
        """One Redis, a cluster or Sentinel, by the URL's scheme (store/connection.py)."""
        client = connect(url, timeout_s=timeout_s, max_connections=max_connections)
        return cls(
            client,
            audited=audited,
            replica_acks=replica_acks,
            replica_ack_timeout_ms=replica_ack_timeout_ms,
            autopipeline=autopipeline,
        )

    async def _do(self, op: Callable[[], Awaitable[T]]) -> T:
        try:
            return await op()
        # RedisClusterException (e.g. SlotNotCoveredError mid-failover) is not a RedisError.
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    # ---- data plane -------------------------------------------------------------------------------

    async def key_for_token(self, token_sha256: str) -> str | None:
        v: Any = await self._do(lambda: self._r.get(keys.token(token_sha256)))
        return v

    async def grant(self, key_id: str) -> Grant | None:
        raw: Any = await self._do(lambda: self._r.get(keys.grant(key_id)))
        return Grant.model_validate_json(raw) if raw else None

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
    ) -> Commit:
        """Check the grant is still at `version`, recognise a retry, apply the loop breaker and reserve
        the amount, atomically (commit.lua); also records the decision as the key's last one. With a
        `budget`, the amount is reserved against the budget's cap too, in the same step."""
        rid = secrets.token_hex(8)
        idem = limits.idempotency_key
        b = budget.budget_id if budget else None
        version_k, last_k, no_idem_k, calls_k, ledger_k = _slot_keys(key_id, b)
        ks = [
            version_k,
            keys.spend(key_id, vendor, day, b),
            keys.reservation(key_id, rid, b),
            last_k,
            keys.idempotency(key_id, idem, b) if idem else no_idem_k,
            calls_k,
            ledger_k,
        ]
        aid = limits.approval_id if idem else ""
        if aid:
            ks += [  # in the key's slot: its budget's when it has one
                keys.approval(key_id, aid, b),
                keys.pending_approvals(key_id, b),
                keys.approval_of_request(key_id, f"{limits.fingerprint}:{amount_micro_usd}", b),
            ]
        else:  # untouched without an approval: the version key stands in (same slot), no names to build
            ks += [ks[0]] * 3
        args: list[Any] = [
            version,
            amount_micro_usd,
            cap_micro_usd,
            DAY_TTL_S,
            rule,
            decision_id,
            at_ms,
            limits.fingerprint if idem else "",
            IDEMPOTENCY_TTL_S,
            limits.breaker_calls,
            limits.breaker_window_ms,
            rid,
            aid,
            limits.approval_ttl_ms,
            -(-limits.approval_ttl_ms // 1000) + APPROVAL_KEPT_S,
            limits.approval_details,
            limits.approval_max_waiting,
        ]
        if budget is not None:  # commit.lua's shared-budget block
            ks += [
                keys.budget_spend(budget.budget_id, budget.day),
                keys.budget_ledger(budget.budget_id),
                keys.budget_reservation(budget.budget_id, rid),
            ]
            args.append(budget.cap_micro_usd)
        if self._acks:
            reply = await self._do(lambda: self._commit_replicated(ks, args))
        elif (pipelined := self._commit_pipelined) is not None:
            reply = await self._do(lambda: pipelined(ks, args))
        else:
            reply = await self._do(lambda: self._commit(keys=ks, args=args))
        status, spent, retry_after_ms, bspent, created, expires_ms, decided_by = [*reply, 0, 0, ""][:7]
        st = CommitStatus(int(status))
        if st is CommitStatus.APPROVAL_PENDING:
            # Indexed on every pending answer (idempotent), so a write lost with a failed call is made
            # again by the agent's next retry; the record itself sits in the key's slot, the index cannot.
            aid = limits.approval_id
            entry = _index_entry(key_id, b)
            await self._do(lambda: self._r.hset(keys.approvals_index(), aid, entry))
        reserved = st is CommitStatus.COMMITTED and amount_micro_usd > 0
        return Commit(
            st,
            int(spent),
            rid if reserved else None,
            int(retry_after_ms),
            int(bspent),
            approval_created=bool(int(created)),
            approval_expires_ms=int(expires_ms),
            approval_decided_by=_text(decided_by),
        )

    async def _commit_replicated(self, ks: list[str], args: list[Any]) -> list[Any]:
        """commit.lua, then WAIT on the same connection (one pipeline, one round trip): a reservation
        only the master holds is lost if it fails over, and the cap can then be passed by that much.
        Fewer replicas than asked for, in time, raise StoreUnavailable: the call is denied, so it never
        reaches the vendor, and its reservation is given back (release.lua; should that fail too, it
        stays counted: a cap can only be left unused, never passed)."""
        r: Any = self._r
        node: Any = None
        target: dict[str, Any] = {}
        if isinstance(r, RedisCluster):
            # WAIT names no key: it must go to the slot's master, in the same pipeline as the script.
            await r.initialize()
            target["target_nodes"] = node = r.get_node_from_key(ks[0])
        for attempt in (1, 2):
            pipe = r.pipeline(transaction=False)
            # execute_command: a cluster pipeline refuses .evalsha(), not the command itself
            pipe.execute_command("EVALSHA", self._commit.sha, len(ks), *ks, *args)
            pipe.execute_command("WAIT", self._acks, self._ack_timeout_ms, **target)
            result, acked = await pipe.execute(raise_on_error=False)
            if isinstance(result, NoScriptError) and attempt == 1:
                await r.script_load(self._commit.script)  # every master of a cluster
                continue
            for reply in (result, acked):
                # Whatever the driver recorded as a reply's failure is the store's failure (redis-py's
                # cluster pipeline can record an AttributeError from a connection closed mid-failover).
                if isinstance(reply, Exception):
                    raise StoreUnavailable(f"redis: {type(reply).__name__}: {reply}") from reply
            break
        moved = (
            node is not None and r.get_node_from_key(ks[0]).name != node.name
        )  # redirected: WAIT missed it
        reserved = CommitStatus(int(result[0])) is CommitStatus.COMMITTED and int(args[1]) > 0
        if reserved and (moved or int(acked) < self._acks):
            # ks: spend, reservation, …, idempotency record (ks[4]: one no call has when it has no key),
            # then the approval's three (ks[7..9]), then, under a shared budget, its counter (ks[10]) and the
            # reservation's budget record (ks[12]): release.lua gives the amount back to both.
            held = [ks[1], ks[2], ks[4], *([ks[10], ks[12]] if len(ks) > 10 else [])]
            with contextlib.suppress(RedisError, RedisClusterException, OSError):
                await self._release(keys=held, args=[args[11], DAY_TTL_S])
            raise StoreUnavailable(
                f"redis: reservation held by {int(acked)} of {self._acks} replicas in time"
            )
        return list(result)

    async def release(
        self,
        key_id: str,
        vendor: str,
        day: str,
        reservation_id: str,
        idempotency_key: str | None = None,
        *,
        budget: BudgetCharge | None = None,
    ) -> int:
        """Give the reservation back; with the call's idempotency key, forget the key too (see release.lua).
        `budget`: the budget (and its day) the call was reserved under, as the audit row names it."""
        ks = _release_keys(key_id, vendor, day, reservation_id, idempotency_key, budget)
        n = await self._do(lambda: self._release(keys=ks, args=[reservation_id, DAY_TTL_S]))
        return int(n)

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
    ) -> int:
        """Close the reservation at `actual_micro_usd` (settle.lua); `at_ms` (the call's time) lets a call
        reserved in a Redis that lost its data be counted again here, once. `budget`: as for release."""
        ks = _settle_keys(key_id, vendor, day, reservation_id, budget)
        n = await self._do(lambda: self._settle(keys=ks, args=[actual_micro_usd, at_ms, DAY_TTL_S]))
        return int(n)

    async def close_reservations(self, closings: Sequence[Closing], *, batch: int = 256) -> None:
        """release.lua or settle.lua for each, pipelined (a cluster pipeline splits them by master).
        Any failure raises StoreUnavailable; the audit then closes them all again later (idempotent)."""
        for start in range(0, len(closings), batch):
            calls = [self._closing(c) for c in closings[start : start + batch]]
            await self._do(partial(self._pipelined, calls))

    def _closing(self, c: Closing) -> tuple[Any, list[str], list[Any]]:
        if c.release:
            ks = _release_keys(c.key_id, c.vendor, c.day, c.reservation_id, c.idempotency_key, c.budget)
            return self._release, ks, [c.reservation_id, DAY_TTL_S]
        ks = _settle_keys(c.key_id, c.vendor, c.day, c.reservation_id, c.budget)
        return self._settle, ks, [c.actual_micro_usd, c.at_ms, DAY_TTL_S]

    async def _pipelined(self, calls: list[tuple[Any, list[str], list[Any]]]) -> None:
        """The scripts in one pipeline (autopipeline.run_scripts); any error reply fails the batch."""
        replies = await run_scripts(self._r, calls, self._send)
        failed = [r for r in replies if isinstance(r, Exception)]
        if failed:
            raise failed[0]

    async def spent(self, key_id: str, vendor: str, day: str, budget_id: str | None = None) -> int:
        v: Any = await self._do(lambda: self._r.get(keys.spend(key_id, vendor, day, budget_id)))
        return int(v or 0)

    async def budget_spent(self, budget_id: str, day: str) -> int:
        v: Any = await self._do(lambda: self._r.get(keys.budget_spend(budget_id, day)))
        return int(v or 0)

    async def last_decision(self, key_id: str, budget_id: str | None = None) -> LastDecision | None:
        h: Any = await self._do(lambda: self._r.hgetall(keys.last_decision(key_id, budget_id)))
        if not h:
            return None
        return LastDecision(h.get("rule", ""), h.get("decision_id", ""), int(h.get("at_ms", 0)))

    async def claim_once(self, name: str, ttl_s: int) -> bool:
        ok: Any = await self._do(lambda: self._r.set(keys.alert(name), "1", nx=True, ex=ttl_s))
        return bool(ok)

    # ---- reconcile --------------------------------------------------------------------------------

    async def put_grant(self, grant: Grant) -> None:
        """Write the grant, then index its token. Replacing the grant is what revokes an old token. A
        grant under another budget than before moves the key's counters to its new slot first."""
        old_raw: Any = await self._do(lambda: self._r.get(keys.grant(grant.key_id)))
        old = Grant.model_validate_json(old_raw) if old_raw else None
        key_id, b = grant.key_id, grant.budget_id
        moved = old is not None and keys.slot(key_id, old.budget_id) != keys.slot(key_id, b)
        if old is not None and moved:
            await self._move_in(old, grant, await self._move_out(old))

        async def write() -> None:
            now_ms = int(time.time() * 1000)
            if b is None:
                # grant and version share a slot: one MULTI keeps them in step
                pipe = self._r.pipeline(transaction=True)
                pipe.set(keys.grant(key_id), grant.model_dump_json())
                pipe.set(keys.version(key_id), grant.version)
                if not self.audited:  # no ledger to wait for: what Redis holds is all there is
                    pipe.set(keys.ledger(key_id), now_ms, nx=True)
                await pipe.execute()
            else:
                # Under a budget the version sits in the budget's slot, beside the counters commit.lua
                # reserves against, and the grant in the key's: one round trip, no MULTI across slots.
                # In either order a commit never passes on terms it was not decided on: a stale version
                # (or a new grant before its version lands) is STALE, and the call is decided again.
                pipe = self._r.pipeline(transaction=False)
                pipe.set(keys.version(key_id, b), grant.version)
                pipe.set(keys.grant(key_id), grant.model_dump_json())
                if not self.audited:
                    pipe.set(keys.ledger(key_id, b), now_ms, nx=True)
                    pipe.set(keys.budget_ledger(b), now_ms, nx=True)
                await pipe.execute()
            pipe = self._r.pipeline(transaction=False)
            pipe.set(keys.token(grant.token_sha256), key_id)
            pipe.sadd(keys.grants_index(), key_id)
            if b is not None:
                pipe.sadd(keys.budgets_index(), b)
            await pipe.execute()

        await self._do(write)
        if old is not None and moved:
            await self._forget_slot(old)
        if old:
            previous = old.token_sha256
            if previous != grant.token_sha256:
                await self._retire_token(previous)

    # ---- a key changing slot (store/keys.py): move_out.lua, move_in.lua, then the old slot is cleared ----

    @staticmethod
    def _move_days(g: Grant) -> list[str]:
        # Counters live two days (DAY_TTL_S): yesterday's, today's and (across time zones) tomorrow's.
        now = datetime.now(UTC)
        return sorted({g.day_key(now + timedelta(days=d)) for d in (-1, 0, 1)})

    async def _move_out(self, old: Grant) -> list[Any]:
        key_id, b = old.key_id, old.budget_id
        days = self._move_days(old)
        ks = [keys.version(key_id, b), keys.moving(key_id, b), keys.calls(key_id, b), keys.ledger(key_id, b)]
        ks += [keys.spend(key_id, old.vendor, day, b) for day in days]
        out: Any = await self._do(lambda: self._move_out_lua(keys=ks, args=[secrets.token_hex(8), DAY_TTL_S]))
        return list(out)

    async def _move_in(self, old: Grant, new: Grant, out: list[Any]) -> None:
        move_id, marker, counters, calls = out
        key_id, b = new.key_id, new.budget_id
        days = self._move_days(old)
        ks = [keys.adopted(key_id, b, str(move_id)), keys.ledger(key_id, b), keys.calls(key_id, b)]
        ks += [keys.spend(key_id, old.vendor, day, b) for day in days]
        args: list[Any] = [DAY_TTL_S, marker, len(days), *counters, *calls]
        await self._do(lambda: self._move_in_lua(keys=ks, args=args))

    async def _forget_slot(self, old: Grant) -> None:
        key_id, b = old.key_id, old.budget_id
        ks = [keys.calls(key_id, b), keys.ledger(key_id, b), keys.last_decision(key_id, b)]
        ks += [keys.spend(key_id, old.vendor, day, b) for day in self._move_days(old)]
        ks.append(keys.moving(key_id, b))  # last: while it stands, a repeated move reuses its id
        await self._do(lambda: self._r.delete(*ks[:-1]))
        await self._do(lambda: self._r.delete(ks[-1]))

    async def revoke(self, key_id: str) -> bool:
        """Delete the grant: the very next call with its token is refused as revoked."""
        old_raw: Any = await self._do(lambda: self._r.get(keys.grant(key_id)))
        old = Grant.model_validate_json(old_raw) if old_raw else None
        b = old.budget_id if old else None
        if b is None:
            # One slot: one DEL, so a call never finds the grant without its version (it is refused as
            # revoked on its next read, never told the grant "kept changing").
            removed: int = await self._do(
                lambda: self._r.delete(keys.version(key_id), keys.grant(key_id), keys.last_decision(key_id))
            )
        else:
            # Two slots, one round trip. Whichever lands first, a commit on the cached grant fails
            # STALE once the version is gone, and the next read finds no grant.
            async def drop() -> int:
                pipe = self._r.pipeline(transaction=False)
                pipe.delete(keys.version(key_id, b), keys.last_decision(key_id, b))
                pipe.delete(keys.grant(key_id))
                return sum(int(n) for n in await pipe.execute())

            removed = await self._do(drop)
        await self._do(lambda: self._r.srem(keys.grants_index(), key_id))
        if old:
            await self._retire_token(old.token_sha256)
        return bool(removed)

    async def _retire_token(self, token_sha256: str) -> None:
        # A retired token keeps pointing at its key for a while, so its holder is told "revoked"
        # (and stops) rather than "unknown"; then the index entry ages out.
        await self._do(lambda: self._r.expire(keys.token(token_sha256), RETIRED_TOKEN_TTL_S))

    async def grant_ids(self) -> set[str]:
        ids: Any = await self._do(lambda: self._r.smembers(keys.grants_index()))
        return set(ids)

    # ---- approvals (the operator, `tollgate approve|reject`) ------------------------------------------

    async def approval_of_request(
        self, key_id: str, request: str, budget_id: str | None = None
    ) -> ApprovalRecord | None:
        aid: Any = await self._do(lambda: self._r.get(keys.approval_of_request(key_id, request, budget_id)))
        return await self._approval_record(key_id, _text(aid), budget_id) if aid else None

    async def approval(self, approval_id: str) -> ApprovalRecord | None:
        entry: Any = await self._do(lambda: self._r.hget(keys.approvals_index(), approval_id))
        if entry is None:
            return None
        key_id, budget_id = _index_slot(entry)
        return await self._approval_record(key_id, approval_id, budget_id)

    async def _approval_record(
        self, key_id: str, approval_id: str, budget_id: str | None = None
    ) -> ApprovalRecord | None:
        h: Any = await self._do(lambda: self._r.hgetall(keys.approval(key_id, approval_id, budget_id)))
        if not h:
            return None
        h = {_text(k): _text(v) for k, v in h.items()}
        return ApprovalRecord(
            id=approval_id,
            key_id=key_id,
            stored_state=ApprovalState(h["state"]),
            cost_micro_usd=int(h.get("cost", 0)),
            created_ms=int(h.get("created_ms", 0)),
            expires_ms=int(h.get("expires_ms", 0)),
            details=json.loads(h.get("details") or "{}"),
            decided_by=h.get("decided_by", ""),
            decided_ms=int(h.get("decided_ms", 0)),
            used_ms=int(h.get("used_ms", 0)),
            budget_id=budget_id,
        )

    async def approvals(self) -> list[ApprovalRecord]:
        index: Any = await self._do(lambda: self._r.hgetall(keys.approvals_index()))
        out, gone = [], []
        for aid, entry in sorted((_text(a), _text(e)) for a, e in index.items()):
            key_id, budget_id = _index_slot(entry)
            record = await self._approval_record(key_id, aid, budget_id)
            if record is None:
                gone.append(aid)
            else:
                out.append(record)
        if gone:
            await self._do(lambda: self._r.hdel(keys.approvals_index(), *gone))
        return out

    async def decide_approval(
        self, approval_id: str, state: ApprovalState, by: str, at_ms: int
    ) -> tuple[bool, ApprovalRecord | None]:
        entry: Any = await self._do(lambda: self._r.hget(keys.approvals_index(), approval_id))
        if entry is None:
            return False, None
        key_id, b = _index_slot(entry)
        done, _ = await self._do(
            lambda: self._approval(
                keys=[keys.approval(key_id, approval_id, b), keys.pending_approvals(key_id, b)],
                args=[state.value, by, at_ms, APPROVAL_KEPT_S, approval_id],
            )
        )
        record = await self._approval_record(key_id, approval_id, b)
        if int(done) and record is not None:
            # After the decision, not in its script (another slot): a decision made while this write fails
            # stands, and is still in the record (decided_by, decided_ms) and in the SpendApproval's status.
            event = {
                "approval_id": approval_id,
                "key_id": key_id,
                "policy_id": str(record.details.get("policy_id", "")),
                "state": state.value,
                "by": by,
                "at_ms": at_ms,
                "cost": record.cost_micro_usd,
            }
            log = keys.approvals_log()
            await self._do(lambda: self._r.xadd(log, event, maxlen=APPROVALS_LOG_MAX, approximate=True))  # type: ignore[arg-type]
        return bool(int(done)), record

    async def approval_events(self, after: str, count: int = 500) -> list[ApprovalEvent]:
        found: Any = await self._do(
            lambda: self._r.xrange(
                keys.approvals_log(), f"({after}" if after != "0" else "-", "+", count=count
            )
        )
        return [
            ApprovalEvent(
                event_id=_text(eid),
                approval_id=_text(f.get("approval_id", "")),
                key_id=_text(f.get("key_id", "")),
                policy_id=_text(f.get("policy_id", "")),
                state=_text(f.get("state", "")),
                by=_text(f.get("by", "")),
                at_ms=int(f.get("at_ms", 0)),
                cost_micro_usd=int(f.get("cost", 0)),
            )
            for eid, f in found
        ]

    async def forget_approval(self, approval_id: str) -> None:
        await self._do(lambda: self._r.hdel(keys.approvals_index(), approval_id))

    # ---- ledger (the audit ingester) ---------------------------------------------------------------

    async def _budgets_of(self, key_ids: list[str]) -> dict[str, str | None]:
        """Each key's budget (from its grant), which names the slot its ledger marker sits in."""

        async def read() -> list[Any]:
            pipe = self._r.pipeline(transaction=False)
            for key_id in key_ids:
                pipe.get(keys.grant(key_id))
            return list(await pipe.execute())

        raws = await self._do(read) if key_ids else []
        return {
            k: (Grant.model_validate_json(raw).budget_id if raw else None)
            for k, raw in zip(key_ids, raws, strict=True)
        }

    async def unmarked(self, key_ids: set[str]) -> set[str]:
        """Keys whose spend (or whose budget's) this Redis does not hold from the ledger."""
        ordered = sorted(key_ids)
        budgets = await self._budgets_of(ordered)

        async def check() -> list[Any]:
            # A key under a budget needs the budget's mark too before a money call passes (commit.lua).
            pipe = self._r.pipeline(transaction=False)
            for key_id in ordered:
                b = budgets[key_id]
                pipe.exists(keys.ledger(key_id, b))
                pipe.exists(keys.budget_ledger(b) if b else keys.ledger(key_id))
            return list(await pipe.execute())

        found = await self._do(check) if ordered else []
        return {k for i, k in enumerate(ordered) if not (found[2 * i] and found[2 * i + 1])}

    async def rebuild(self, copy: LedgerCopy) -> bool:
        b = (await self._budgets_of([copy.key_id]))[copy.key_id]
        days = sorted(copy.spend)
        ks = [keys.ledger(copy.key_id, b), keys.calls(copy.key_id, b)]
        ks += [keys.spend(copy.key_id, vendor, day, b) for vendor, day in days]
        args: list[Any] = [copy.since_ms, DAY_TTL_S, copy.window_ms]
        args += [copy.spend[d] for d in days]
        for member, score in copy.calls:
            args += [member, score]
        n = await self._do(lambda: self._rebuild(keys=ks, args=args))
        return bool(int(n))

    async def budget_ids(self) -> set[str]:
        ids: Any = await self._do(lambda: self._r.smembers(keys.budgets_index()))
        return set(ids)

    async def unmarked_budgets(self, budget_ids: set[str]) -> set[str]:
        ordered = sorted(budget_ids)

        async def check() -> list[Any]:
            pipe = self._r.pipeline(transaction=False)
            for budget_id in ordered:
                pipe.exists(keys.budget_ledger(budget_id))
            return list(await pipe.execute())

        found = await self._do(check) if ordered else []
        return {b for b, n in zip(ordered, found, strict=True) if not n}

    async def rebuild_budget(self, copy: BudgetLedgerCopy) -> bool:
        """rebuild.lua on the budget's counters (no loop breaker): set, never lowered, then marked."""
        days = sorted(copy.spend)
        ks = [
            keys.budget_ledger(copy.budget_id),
            keys.budget_ledger(copy.budget_id),
        ]  # no log: the marker twice
        ks += [keys.budget_spend(copy.budget_id, day) for day in days]
        args: list[Any] = [copy.since_ms, DAY_TTL_S, 0, *(copy.spend[d] for d in days)]
        n = await self._do(lambda: self._rebuild(keys=ks, args=args))
        return bool(int(n))

    async def ledger_hint(self) -> str | None:
        v: Any = await self._do(lambda: self._r.get(keys.ledger_hint()))
        return v

    async def set_ledger_hint(self, server_id: str) -> None:
        await self._do(lambda: self._r.set(keys.ledger_hint(), server_id))

    async def server_id(self) -> str:
        """The run id of the server holding the data; on a cluster, of every master (by address), since the ledger hint lives on one master while a failover or restart of any other
        master loses that master's data."""
        if isinstance(self._r, RedisCluster):
            return await self._do(self._masters_id)
        info: Any = await self._do(lambda: self._r.info("server"))
        return str(info.get("run_id", ""))

    async def _masters_id(self) -> str:
        cluster: Any = self._r
        await cluster.initialize()  # the masters are known only once the client has asked (no-op after)
        ids = []
        for node in cluster.get_primaries():
            info = await cluster.info("server", target_nodes=node)
            ids.append(f"{node.name}={info.get('run_id', '')}")
        return ",".join(sorted(ids))

    async def forget_marks(self, key_ids: set[str]) -> None:
        budgets = await self._budgets_of(sorted(key_ids))

        async def drop() -> None:
            pipe = self._r.pipeline(transaction=False)
            for key_id, b in budgets.items():
                pipe.delete(keys.ledger(key_id, b))
            for b in sorted({b for b in budgets.values() if b}):
                pipe.delete(keys.budget_ledger(b))
            await pipe.execute()

        if key_ids:
            await self._do(drop)

    async def settle_checkpoint(self, source: str) -> str | None:
        v: Any = await self._do(lambda: self._r.get(keys.settle_checkpoint(source)))
        return v

    async def save_settle_checkpoint(self, source: str, position: str) -> None:
        # After every batch the ingester settles: through the link, as the batch's scripts went.
        async def save() -> None:
            (reply,) = await self._send([("SET", keys.settle_checkpoint(source), position)])
            if isinstance(reply, Exception):  # an error reply: _do reports it as it does any Redis error
                raise reply

        await self._do(save)

    async def ping(self) -> None:
        await self._do(lambda: self._r.ping())

    async def close(self) -> None:
        if self._link is not None:
            await self._link.close()
        await self._r.aclose()


def _release_keys(
    key_id: str,
    vendor: str,
    day: str,
    reservation_id: str,
    idempotency_key: str | None,
    budget: BudgetCharge | None,
) -> list[str]:
    """release.lua's KEYS."""
    b = budget.budget_id if budget else None
    ks = [
        keys.spend(key_id, vendor, day, b),
        keys.reservation(key_id, reservation_id, b),
        keys.idempotency(key_id, idempotency_key or "", b),
    ]
    if budget is not None:
        ks += [
            keys.budget_spend(budget.budget_id, budget.day),
            keys.budget_reservation(budget.budget_id, reservation_id),
        ]
    return ks


def _settle_keys(
    key_id: str, vendor: str, day: str, reservation_id: str, budget: BudgetCharge | None
) -> list[str]:
    """settle.lua's KEYS."""
    b = budget.budget_id if budget else None
    ks = [
        keys.spend(key_id, vendor, day, b),
        keys.reservation(key_id, reservation_id, b),
        keys.ledger(key_id, b),
    ]
    if budget is not None:
        ks += [
            keys.budget_spend(budget.budget_id, budget.day),
            keys.budget_reservation(budget.budget_id, reservation_id),
            keys.budget_ledger(budget.budget_id),
        ]
    return ks


@lru_cache(maxsize=1024)
def _slot_keys(key_id: str, budget_id: str | None) -> tuple[str, str, str, str, str]:
    """commit.lua's key names that depend on the key and its budget alone (built once, not per call).
    The third is the idempotency record of a call without a key: one that never exists (a refused
    reservation's release deletes the record it is given)."""
    return (
        keys.version(key_id, budget_id),
        keys.last_decision(key_id, budget_id),
        keys.idempotency(key_id, "", budget_id),
        keys.calls(key_id, budget_id),
        keys.ledger(key_id, budget_id),
    )


def _index_entry(key_id: str, budget_id: str | None) -> str:
    """tg:approvals' value: the key id, and its budget's id when it has one (the record's slot)."""
    return f"{key_id}\t{budget_id}" if budget_id else key_id


def _index_slot(entry: Any) -> tuple[str, str | None]:
    """(key id, budget id or None) from tg:approvals' value; a plain key id (as written before budgets) has
    no budget."""
    key_id, _, budget_id = _text(entry).partition("\t")
    return key_id, budget_id or None


def _text(v: Any) -> str:
    """A reply as text, whether the client decodes responses or not."""
    return v.decode() if isinstance(v, bytes) else str(v)
