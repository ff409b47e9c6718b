"""Tail Envoy's JSON access log into the SQL store, and settle reservations from it.

Two readers of one file, each with its own checkpoint, so neither waits for the other's store:
- settlement reads ahead, whatever the SQL store is doing: each line's reservation is settled or
  released in Redis (idempotent per reservation), and its position kept in Redis;
- the audit writes rows: a line is only behind the SQL checkpoint once its row is committed (rows
  and checkpoint share one transaction), so while the SQL store is unreachable the backlog waits in
  the file and is written when it returns. Nothing is lost and nothing is doubled.
Beside them, the ledger sweep gives Redis back each key's spend from the audit store when Redis has lost
it (tollgate.audit.ledger); money calls of a key wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from tollgate.audit.ledger import budget_copy, ledger_copy, lookback
from tollgate.audit.record import AuditRow, from_line
from tollgate.audit.settle import apply_settlements
from tollgate.audit.sql import APPROVALS_SOURCE, AuditStore, AuditStoreUnavailable, Checkpoint
from tollgate.errors import StoreUnavailable, TollgateError
from tollgate.store.base import ApprovalEvent, ApprovalLog, IngestStore, Ledger

log = logging.getLogger("tollgate.audit")
MAX_BATCH_BYTES = 1 << 20
REOPEN_RETRY_S = 5.0  # how often a writer that did not reopen the log is asked again
SWEEP_S = 0.25  # how often the ledger sweep looks for keys whose spend Redis does not hold
# How often decisions on approvals are copied from Redis into SQL: a person's decision is not urgent in the
# audit, and polling Redis every idle tick was most of an idle ingester's CPU.
APPROVALS_S = 0.25
# After Redis lost data, calls it allowed may still be at the vendor; their lines come when they end
# (Envoy's route timeout, 80 s by default). Spend is rebuilt once Envoy has no request in flight, or
# once this long has passed where Envoy cannot be asked.
INFLIGHT_GRACE_S = 90.0


class LogTail:
    """Whole lines of a growing file, from a checkpoint.

    Rotation: the file is renamed to `<name>.1` and the writer reopens `<name>`. While the checkpoint is on
    the renamed file and it has unread bytes, reading goes on there (also after a restart), and only then
    moves to the new file, from its start. Any other replaced or truncated file starts over."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rotated = path.with_name(path.name + ".1")

    def read(
        self, cp: Checkpoint | None, max_bytes: int = MAX_BATCH_BYTES
    ) -> tuple[list[tuple[str, str]], Checkpoint]:
        current = _stat(self.path)
        if cp and cp.identity and (current is None or _identity(current) != cp.identity):
            old = _stat(self.rotated)
            if old is not None and _identity(old) == cp.identity:
                lines, after = self._read(self.rotated, old, cp.offset, max_bytes)
                if lines or current is None or after.offset < old.st_size:
                    return lines, after  # the renamed file is not drained yet, or nothing replaced it
                cp = None  # drained: the reopened file, from its start
        if current is None:
            return [], cp or Checkpoint("", 0)
        identity = _identity(current)
        offset = cp.offset if cp and cp.identity == identity and cp.offset <= current.st_size else 0
        if cp and offset == 0 and cp.offset:
            log.warning("access log %s was replaced or truncated; reading it from the start", self.path)
        return self._read(self.path, current, offset, max_bytes)

    def caught_up(self, cp: Checkpoint | None) -> int | None:
        """The file's size when `cp` is at its end (nothing unread, nothing of a renamed file left)."""
        current = _stat(self.path)
        if cp is None or current is None or _identity(current) != cp.identity:
            return None
        return current.st_size if cp.offset == current.st_size else None

    @staticmethod
    def _read(
        path: Path, st: os.stat_result, offset: int, max_bytes: int
    ) -> tuple[list[tuple[str, str]], Checkpoint]:
        identity = _identity(st)
        with open(path, "rb") as f:
            f.seek(offset)
            chunk = f.read(max_bytes)
        end = chunk.rfind(b"\n")
        if end < 0:  # no complete line yet (Envoy writes whole lines; a partial one is still being flushed)
            return [], Checkpoint(identity, offset)
        lines: list[tuple[str, str]] = []
        pos = offset
        for raw in chunk[: end + 1].split(b"\n")[:-1]:
            if raw.strip():
                lines.append((raw.decode("utf-8", errors="replace"), f"{identity}@{pos}"))
            pos += len(raw) + 1
        return lines, Checkpoint(identity, offset + end + 1)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _identity(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def settled_to_end(position: str | None, path: Path) -> bool:
    """Whether settlement's saved position (`identity@offset`, AuditPipeline's) is at the end of the log
    at `path`: every line there now has been settled. An empty or missing log has nothing to settle."""
    st = _stat(path)
    if st is None or st.st_size == 0:
        return True
    cp = parse_position(position)
    return cp is not None and cp.identity == _identity(st) and cp.offset >= st.st_size


def parse_position(position: str | None) -> Checkpoint | None:
    """Settlement's saved position, `identity@offset`, as a checkpoint (None when absent or malformed)."""
    identity, _, offset = (position or "").rpartition("@")
    return Checkpoint(identity, int(offset)) if identity and offset.isdigit() else None


class ParsedLines:
    """Each log line parsed once for both readers: settlement and the row writer read the same lines, one
    after the other, and parsing is most of an ingester's CPU. A row parsed by one is kept, by position,
    for the other, which takes it (a row is frozen: both can hold it). A position is reused only by a
    file truncated in place, so a kept row is used only for the same text. Bounded: should one reader
    be far behind (its store down), what the other parsed is let go and parsed again later."""

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._kept: dict[str, tuple[str, AuditRow]] = {}
        self.parsed = 0  # lines parsed, for tests

    def rows(self, lines: list[tuple[str, str]]) -> list[AuditRow]:
        out = []
        for line, pos in lines:
            kept = self._kept.pop(pos, None)
            if kept is not None and kept[0] == line:
                out.append(kept[1])
                continue
            row = from_line(line, pos)
            self.parsed += 1
            if self._limit:
                if len(self._kept) >= self._limit:
                    self._kept.clear()
                self._kept[pos] = (line, row)
            out.append(row)
        return out


class AuditPipeline:
    def __init__(
        self,
        log_path: Path,
        audit: AuditStore,
        store: IngestStore | None,
        *,
        source: str | None = None,
        observers: Sequence[Callable[[list[AuditRow]], None]] = (),
        rotate_bytes: int = 0,
        reopen: Callable[[], Awaitable[None]] | None = None,
        ledger: Ledger | None = None,
        inflight: Callable[[], Awaitable[int]] | None = None,
        inflight_grace_s: float = INFLIGHT_GRACE_S,
        flush_s: float = 1.0,
        approvals: ApprovalLog | None = None,
        approval_observers: Sequence[Callable[[list[ApprovalEvent]], None]] = (),
    ) -> None:
        """`rotate_bytes` > 0 with `reopen` (which makes the writer reopen the log, e.g. Envoy's admin
        POST /reopen_logs) keeps the log under about that size: once every line is committed.
        `ledger` (the Redis store, usually `store` itself) turns on the ledger sweep; `inflight` counts the
        requests Envoy has in flight (its admin stats), `flush_s` is how long Envoy may hold a log line;
        `approvals` (the Redis store too) is copied into tollgate_approval_events: who decided what."""
        self.approvals = approvals
        self.approval_observers = approval_observers
        self._approvals_after: str | None = None
        self.inflight = inflight
        self.inflight_grace_s = inflight_grace_s
        self.flush_s = flush_s
        self._loss_at: float | None = None  # when Redis was found to have lost data, until rebuilt
        self.tail = LogTail(log_path)
        self.rotate_bytes = rotate_bytes
        self.reopen = reopen
        self.audit = audit
        self.store = store
        self.ledger = ledger
        self.source = source or str(log_path.resolve())
        self.observers = observers
        self._cp: Checkpoint | None = None
        self._loaded = False
        self._migrated = False
        self._settle_cp: Checkpoint | None = None
        self._settle_loaded = False
        self._settling = asyncio.Lock()
        self._reopen_retry_at: float | None = None  # set while the writer has not reopened the log
        self._marked: set[str] = set()  # keys seen marked since the ledger hint was last found
        self._budgets_marked: set[str] = set()  # shared budgets likewise
        self._next_sweep = 0.0
        self._next_approvals = 0.0
        self.parsed = ParsedLines(limit=4096 if store is not None else 0)  # no settlement: one reader

    async def run_once(self, *, sql: bool = True) -> int:
        """Settle what is there now, write its rows and sweep the ledger; returns the rows written. Each
        step runs whether or not the others' store is reachable; then the first failure is raised.
        `sql=False`: settle only (`run`, while the SQL store waits to be retried)."""
        failures: list[TollgateError] = []
        try:
            await self._settle_all()
        except (AuditStoreUnavailable, StoreUnavailable) as exc:  # SQL only to find where to start
            failures.append(exc)
        if not sql:
            if failures:
                raise failures[0]
            return 0
        written = 0
        try:
            written = await self._write_rows()
        except AuditStoreUnavailable as exc:
            failures.append(exc)
        if time.monotonic() >= self._next_approvals:
            self._next_approvals = time.monotonic() + APPROVALS_S
            try:
                await self._copy_approval_events()
            except (AuditStoreUnavailable, StoreUnavailable) as exc:
                failures.append(exc)
        if self.ledger is not None and time.monotonic() >= self._next_sweep and not failures:
            self._next_sweep = time.monotonic() + SWEEP_S
            try:
                await self.sweep()
            except (AuditStoreUnavailable, StoreUnavailable) as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
        return written

    # ---- settlement: Redis only ----------------------------------------------------------------------

    async def _settle_all(self) -> int:
        # One at a time: `drain` and the ledger sweep settle too, and may be called beside `run` (two readers
        # of one checkpoint could save an older position after a newer one; a rebuild must not race a settle).
        async with self._settling:
            return await self._settle_locked()

    async def _settle_locked(self) -> int:
        if self.store is None:
            return 0
        if not self._settle_loaded:
            self._settle_cp = await self._settle_start()
            self._settle_loaded = True
        total = 0
        while True:
            lines, cp = self.tail.read(self._settle_cp)
            if not lines:
                return total
            rows = self.parsed.rows(lines)
            await apply_settlements(self.store, rows)
            await self._save_settle_cp(cp)
            self._settle_cp = cp
            total += len(rows)

    async def _settle_start(self) -> Checkpoint | None:
        """Where settlement resumes: its own checkpoint in Redis, else the SQL one (settling again what the
        SQL store already holds is harmless; settling from the file's start is not, see ledger.py)."""
        saved = await self._settle_cp_get()
        if saved is not None:
            return saved
        await self._migrate()
        return await asyncio.to_thread(self.audit.checkpoint, self.source)

    async def _migrate(self) -> None:
        if not self._migrated:
            await asyncio.to_thread(self.audit.migrate)
            self._migrated = True

    async def _settle_cp_get(self) -> Checkpoint | None:
        return parse_position(
            await self.ledger.settle_checkpoint(self.source) if self.ledger is not None else None
        )

    async def _save_settle_cp(self, cp: Checkpoint) -> None:
        if self.ledger is not None:
            await self.ledger.save_settle_checkpoint(self.source, f"{cp.identity}@{cp.offset}")

    # ---- rows: the SQL store only --------------------------------------------------------------------

    async def _write_rows(self) -> int:
        await self._migrate()
        if not self._loaded:
            self._cp = await asyncio.to_thread(self.audit.checkpoint, self.source)
            self._loaded = True
            if self.tail.rotated.exists() and not self.tail.path.exists():
                self._reopen_retry_at = 0.0  # a crash between rename and reopen: make sure the writer reopens
        lines, cp = self.tail.read(self._cp)
        if not lines:
            await self._maybe_rotate()
            return 0
        rows = self.parsed.rows(lines)
        await asyncio.to_thread(self.audit.append, rows, self.source, cp)
        self._cp = cp
        for observe in self.observers:
            observe(rows)
        return len(rows)

    async def _copy_approval_events(self) -> int:
        """Decisions on approvals, from Redis's log into SQL (events and checkpoint in one transaction)."""
        if self.approvals is None:
            return 0
        await self._migrate()
        if self._approvals_after is None:
            cp = await asyncio.to_thread(self.audit.checkpoint, APPROVALS_SOURCE)
            self._approvals_after = cp.identity if cp else "0"
        events = await self.approvals.approval_events(self._approvals_after)
        if events:
            await asyncio.to_thread(self.audit.append_approval_events, events)
            self._approvals_after = events[-1].event_id
            for observe in self.approval_observers:
                observe(events)
        return len(events)

    async def drain(self) -> None:
        """Settle and write every line there is now, so the SQL store holds every call Envoy logged."""
        async with self._settling:
            await self._drain_locked()

    async def _drain_locked(self) -> None:
        while True:
            await self._settle_locked()
            if await self._write_rows() == 0 and self.tail.read(self._settle_cp)[0] == []:
                return

    # ---- the ledger: Redis's copy of the audit store --------------------------------------------------

    async def sweep(self) -> list[str]:
        """Rebuild every key whose spend Redis does not hold from the ledger; returns the keys rebuilt.
        Settlement waits meanwhile: a rebuild reads the audit and writes spend that settling at the same
        time would change under it."""
        async with self._settling:
            return await self._sweep_locked()

    async def _sweep_locked(self) -> list[str]:
        assert self.ledger is not None and self.store is not None
        server = await self.ledger.server_id()
        hint = await self.ledger.ledger_hint()
        if hint != server:
            # Redis may have lost data: emptied (no hint), restarted, or replaced by a replica that may be
            # behind (another run id). Every key is rebuilt (a counter is never lowered), after the calls
            # the old Redis may have allowed have finished. A key that appears later, with the hint in
            # place, is new to this Redis: nothing of it can be in flight, so it is marked at once.
            self._marked.clear()
            self._budgets_marked.clear()
            self._loss_at = time.monotonic()
            grants = await self.store.grant_ids()
            if hint is not None:
                log.warning(
                    "Redis is another server than the one the ledger was checked on; rebuilding spend"
                )
                await self.ledger.forget_marks(grants)
            await self.ledger.set_ledger_hint(server)
        grants = await self.store.grant_ids()
        todo = grants - self._marked
        missing = await self.ledger.unmarked(todo) if todo else set()
        self._marked |= todo - missing
        budgets = await self.ledger.budget_ids() - self._budgets_marked
        budgets_missing = await self.ledger.unmarked_budgets(budgets) if budgets else set()
        self._budgets_marked |= budgets - budgets_missing
        if not missing and not budgets_missing:
            return []
        since_ms = int(time.time() * 1000)
        if self._loss_at is not None:
            if not await self._nothing_in_flight():
                return []  # money calls of these keys keep answering 503 until then
            await asyncio.sleep(2 * self.flush_s)  # the last such call's line reaches the file
            self._loss_at = None
        await self._drain_locked()
        rebuilt = []
        for key_id in sorted(missing):
            await self._rebuild(key_id, since_ms)
            self._marked.add(key_id)
            rebuilt.append(key_id)
        for budget_id in sorted(budgets_missing):
            await self._rebuild_budget(budget_id, since_ms)
            self._budgets_marked.add(budget_id)
            rebuilt.append(f"budget:{budget_id}")
        return rebuilt

    async def _nothing_in_flight(self) -> bool:
        assert self._loss_at is not None
        if time.monotonic() - self._loss_at >= self.inflight_grace_s:
            return True
        if self.inflight is None:
            return False
        try:
            return await self.inflight() == 0
        except Exception as exc:  # Envoy's admin is down: wait out the grace period instead
            log.warning(
                "cannot ask Envoy what is in flight (%s); waiting out %.0fs", exc, self.inflight_grace_s
            )
            return False

    async def _rebuild(self, key_id: str, since_ms: int) -> None:
        assert self.ledger is not None and self.store is not None
        since = lookback(datetime.fromtimestamp(since_ms / 1000, UTC)).date()
        entries = await asyncio.to_thread(self.audit.counted_calls, key_id, since)
        copy = ledger_copy(key_id, entries, await self.store.grant(key_id), since_ms)
        if await self.ledger.rebuild(copy):
            total = sum(copy.spend.values())
            log.warning(
                "restored the spend of %s from the audit ledger (%d micro-USD over %d day(s), %d calls)",
                key_id, total, len(copy.spend), len(entries),
            )  # fmt: skip

    async def _rebuild_budget(self, budget_id: str, since_ms: int) -> None:
        assert self.ledger is not None
        since = lookback(datetime.fromtimestamp(since_ms / 1000, UTC)).date()
        rows = await asyncio.to_thread(self.audit.counted_budget_calls, budget_id, since)
        copy = budget_copy(budget_id, rows, since_ms)
        if await self.ledger.rebuild_budget(copy):
            log.warning(
                "restored the spend of budget %s from the audit ledger (%d micro-USD over %d day(s))",
                budget_id, sum(copy.spend.values()), len(copy.spend),
            )  # fmt: skip

    async def _maybe_rotate(self) -> None:
        # Only a fully committed file is renamed, so a crash at any point leaves every line readable: in the
        # renamed file (drained first, see LogTail) or in the one the writer reopened.
        if self.reopen is None or self.rotate_bytes <= 0:
            return
        if self._reopen_retry_at is not None:
            # The writer is still in the renamed file, which would grow forever: ask it again.
            if time.monotonic() >= self._reopen_retry_at and await self._reopen():
                log.info("the writer reopened access log %s", self.tail.path)
            return
        size = self.tail.caught_up(self._cp)
        if size is None or size < self.rotate_bytes:
            return
        if self.store is not None and self._settle_cp != self._cp:
            return  # settlement is behind (Redis down): it must never lose its place in a renamed file
        os.replace(self.tail.path, self.tail.rotated)
        if await self._reopen():
            log.info("rotated access log %s at %d bytes", self.tail.path, size)

    async def _reopen(self) -> bool:
        assert self.reopen is not None
        try:
            await self.reopen()
        except Exception as exc:  # the writer goes on in the renamed file, which is still read
            log.warning("access log renamed but the writer did not reopen it (will ask again): %s", exc)
            self._reopen_retry_at = time.monotonic() + REOPEN_RETRY_S
            return False
        self._reopen_retry_at = None
        return True

    async def run(self, stop: asyncio.Event, *, idle_s: float = 0.02, max_backoff_s: float = 10.0) -> None:
        """Until `stop`: a store that is down (also at start) is retried with backoff, forever. The SQL
        store's backoff is its own: while it waits, settlement (Redis only) goes on every tick, so a
        database that is down or locked never holds a release for longer than one attempt on it."""
        backoff = idle_s  # Redis: nothing can be settled, every step waits
        sql_backoff, sql_at = idle_s, 0.0  # the SQL store: rows, approval events and the sweep wait
        while not stop.is_set():
            sql = time.monotonic() >= sql_at
            try:
                n = await self.run_once(sql=sql)
                backoff = idle_s
                if sql:
                    sql_backoff = idle_s
            except AuditStoreUnavailable as exc:
                log.warning("audit rows are behind, will retry in %.1fs: %s", sql_backoff, exc)
                # Settlement needs the SQL store only to find where to start; once started, it goes on.
                settling = self.store is not None and self._settle_loaded
                n, backoff = 0, idle_s if settling else min(backoff * 2, max_backoff_s)
                sql_at = time.monotonic() + sql_backoff
                sql_backoff = min(sql_backoff * 2, max_backoff_s)
            except StoreUnavailable as exc:
                log.warning("audit is behind, will retry in %.1fs: %s", backoff, exc)
                n, backoff = 0, min(backoff * 2, max_backoff_s)
            if n == 0 and backoff <= idle_s:
                await asyncio.sleep(backoff)  # an idle tick: cheaper than wait_for's task and timer
            elif n == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
