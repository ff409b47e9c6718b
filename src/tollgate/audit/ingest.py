"""Tail Envoy's JSON access log into the SQL store, settling reservations on the way.

The log file is the spool: a line is only behind the checkpoint once its row is committed (rows
and checkpoint share one transaction), so while the SQL store or Redis is unreachable nothing
advances, and when they return the backlog is written. Nothing is lost and nothing is doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from tollgate.audit.record import AuditRow, from_line
from tollgate.audit.settle import apply_settlements
from tollgate.audit.sql import AuditStore, AuditStoreUnavailable, Checkpoint
from tollgate.errors import StoreUnavailable
from tollgate.store.base import Store

log = logging.getLogger("tollgate.audit")
MAX_BATCH_BYTES = 1 << 20
REOPEN_RETRY_S = 5.0  # how often a writer that did not reopen the log is asked again


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


class AuditPipeline:
    def __init__(
        self,
        log_path: Path,
        audit: AuditStore,
        store: Store | None,
        *,
        source: str | None = None,
        observers: Sequence[Callable[[list[AuditRow]], None]] = (),
        rotate_bytes: int = 0,
        reopen: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`rotate_bytes` > 0 with `reopen` (which makes the writer reopen the log, e.g. Envoy's admin
        POST /reopen_logs) keeps the log under about that size: once every line is committed."""
        self.tail = LogTail(log_path)
        self.rotate_bytes = rotate_bytes
        self.reopen = reopen
        self.audit = audit
        self.store = store
        self.source = source or str(log_path.resolve())
        self.observers = observers
        self._cp: Checkpoint | None = None
        self._loaded = False
        self._reopen_retry_at: float | None = None  # set while the writer has not reopened the log

    async def run_once(self) -> int:
        """Ingest what is there now; returns the rows written. Raises when a store is unreachable."""
        if not self._loaded:
            self._cp = await asyncio.to_thread(self.audit.checkpoint, self.source)
            self._loaded = True
            if self.tail.rotated.exists() and not self.tail.path.exists():
                self._reopen_retry_at = 0.0  # a crash between rename and reopen: make sure the writer reopens
        lines, cp = self.tail.read(self._cp)
        if not lines:
            await self._maybe_rotate()
            return 0
        rows = [from_line(line, pos) for line, pos in lines]
        settlements = await apply_settlements(self.store, rows) if self.store is not None else {}
        await asyncio.to_thread(self.audit.append, rows, settlements, self.source, cp)
        self._cp = cp
        for observe in self.observers:
            observe(rows)
        return len(rows)

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

    async def run(self, stop: asyncio.Event, *, idle_s: float = 0.2, max_backoff_s: float = 10.0) -> None:
        backoff = idle_s
        while not stop.is_set():
            try:
                n = await self.run_once()
                backoff = idle_s
            except (AuditStoreUnavailable, StoreUnavailable) as exc:
                log.warning("audit is behind, will retry in %.1fs: %s", backoff, exc)
                n, backoff = 0, min(backoff * 2, max_backoff_s)
            if n == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
