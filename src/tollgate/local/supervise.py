"""Watch the processes of a local gateway and restart any that dies, with backoff.

A process is restarted when it exits without anyone having called its stop(): the same command on the
same ports, ready once it is proved to be the one listening (tollgate.local.processes). Each restart
is logged; one that keeps dying waits longer each time (0.5 s doubling to 30 s), and the wait starts
over once it has stayed up for a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from tollgate.local.background import Background
from tollgate.local.processes import ManagedProcess, ProcessError

log = logging.getLogger("tollgate.local")
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
STABLE_S = 60.0  # up this long: the next death starts the backoff over


class Supervisor(Background):
    """`processes` is called on every round, so a gateway that replaces a process is watched as it is now."""

    def __init__(
        self,
        processes: Callable[[], Iterable[ManagedProcess]],
        *,
        interval_s: float = 0.2,
        on_restart: Callable[[ManagedProcess], None] | None = None,
    ) -> None:
        super().__init__("tollgate-supervisor")
        self._processes = processes
        self._interval = interval_s
        self._on_restart = on_restart
        self._backoff: dict[str, float] = {}
        self._not_before: dict[str, float] = {}
        self._started_at: dict[str, float] = {}

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for proc in list(self._processes()):
                if self._stop.is_set():
                    return
                if proc.stopped or proc.running() or (proc.pid is None and proc.restarts == 0):
                    continue
                self._revive(proc)

    def _revive(self, proc: ManagedProcess) -> None:
        now = time.monotonic()
        if now < self._not_before.get(proc.name, 0.0):
            return
        if now - self._started_at.get(proc.name, now) >= STABLE_S:
            self._backoff.pop(proc.name, None)
        backoff = self._backoff.get(proc.name, FIRST_BACKOFF_S)
        log.warning(
            "%s (pid %s) exited with code %s; restarting it (restart %d)",
            proc.name, proc.pid, proc.returncode, proc.restarts + 1,
        )  # fmt: skip
        try:
            proc.restart()
        except ProcessError as exc:
            proc.stopped = False  # it failed to come back, it was not stopped on purpose: try again later
            log.error("%s did not come back, next try in %.1fs: %s", proc.name, backoff, exc)
            self._not_before[proc.name] = time.monotonic() + backoff
            self._backoff[proc.name] = min(backoff * 2, MAX_BACKOFF_S)
            return
        self._started_at[proc.name] = time.monotonic()
        self._backoff[proc.name] = min(backoff * 2, MAX_BACKOFF_S)
        self._not_before[proc.name] = time.monotonic() + backoff
        log.warning("%s is back (pid %s)", proc.name, proc.pid)
        if self._on_restart is not None:
            self._on_restart(proc)
