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
from collections.abc import Callable, Sequence
from pathlib import Path

from tollgate.audit.record import AuditRow, from_line
from tollgate.audit.settle import apply_settlements
from tollgate.audit.sql import AuditStore, AuditStoreUnavailable, Checkpoint
from tollgate.errors import StoreUnavailable
from tollgate.store.base import Store

log = logging.getLogger("tollgate.audit")
MAX_BATCH_BYTES = 1 << 20


class LogTail:
    """Whole lines of a growing file, from a checkpoint. A replaced or truncated file starts over."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(
        self, cp: Checkpoint | None, max_bytes: int = MAX_BATCH_BYTES
    ) -> tuple[list[tuple[str, str]], Checkpoint]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return [], cp or Checkpoint("", 0)
        identity = f"{st.st_dev}:{st.st_ino}"
        offset = cp.offset if cp and cp.identity == identity and cp.offset <= st.st_size else 0
        if cp and offset == 0 and cp.offset:
            log.warning("access log %s was replaced or truncated; reading it from the start", self.path)
        with open(self.path, "rb") as f:
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


class AuditPipeline:
    def __init__(
        self,
        log_path: Path,
        audit: AuditStore,
        store: Store | None,
        *,
        source: str | None = None,
        observers: Sequence[Callable[[list[AuditRow]], None]] = (),
    ) -> None:
        self.tail = LogTail(log_path)
        self.audit = audit
        self.store = store
        self.source = source or str(log_path.resolve())
        self.observers = observers
        self._cp: Checkpoint | None = None
        self._loaded = False

    async def run_once(self) -> int:
        """Ingest what is there now; returns the rows written. Raises when a store is unreachable."""
        if not self._loaded:
            self._cp = await asyncio.to_thread(self.audit.checkpoint, self.source)
            self._loaded = True
        lines, cp = self.tail.read(self._cp)
        if not lines:
            return 0
        rows = [from_line(line, pos) for line, pos in lines]
        settlements = await apply_settlements(self.store, rows) if self.store is not None else {}
        await asyncio.to_thread(self.audit.append, rows, settlements, self.source, cp)
        self._cp = cp
        for observe in self.observers:
            observe(rows)
        return len(rows)

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
