"""A daemon thread a local gateway runs beside its processes until stop(): the supervisor, the manifest
watcher, the approval sweeper. Each subclass's `_run` loops until `self._stop` is set."""

from __future__ import annotations

import threading
from typing import Self

JOIN_S = 35.0  # longer than any one round of a subclass (a Redis timeout, a process's restart)


class Background:
    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to end and wait for it; from the thread itself (a callback), only ask."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=JOIN_S)

    def _run(self) -> None:
        raise NotImplementedError
