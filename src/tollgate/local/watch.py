"""Follow edits of local mode's manifests folder, as the operator follows `kubectl apply/delete`.

Polling, not inotify: a manifests folder is a handful of small files, so reading them all every
`interval_s` costs next to nothing, needs no dependency, and sees every way an editor saves (in place,
write-and-rename, a folder on a network or container mount where inotify sees nothing). Contents are
compared, not mtimes, so two saves within one clock tick are still seen.

A change is applied once the folder reads the same on two polls in a row, so a file caught mid-save
(which may still be valid YAML, with a key missing) is not applied; only a write that stalls for a
whole interval could be, and the rest of it is applied on the next poll. The folder is then loaded
and validated whole (tollgate.policy.manifests) and applied through the same reconcile code the
operator uses (LocalGateway.apply → reconcile.manifests): a key whose file is gone is revoked, a key
set `suspended: true` is refused from the next call. A folder that does not load is reported and
changes nothing: the last good state stays until the folder loads again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from tollgate.local.background import Background
from tollgate.policy.manifests import InvalidManifests, Manifests, load_path

log = logging.getLogger("tollgate.local")

Signature = tuple[tuple[str, str], ...]
RETRY_S = 2.0  # after a folder that loaded could not be applied (Redis away), before the next try


def signature(path: Path) -> Signature:
    """What the folder says: every manifest file load_path would read, with a digest of its bytes."""
    files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
    out = []
    for f in files:
        try:
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
        except OSError:  # removed or unreadable between listing and reading: the next poll settles it
            digest = "unreadable"
        out.append((str(f), digest))
    return tuple(out)


class ManifestWatcher(Background):
    """Calls `apply(manifests)` after each settled change of `path` that loads; `report(problems)` for
    one that does not. `applied` and `refused` count them, so a caller can wait for the next one."""

    def __init__(
        self,
        path: Path,
        apply: Callable[[Manifests], None],
        *,
        report: Callable[[list[str]], None] | None = None,
        interval_s: float = 0.1,
    ) -> None:
        super().__init__("tollgate-watcher")
        self.path = path
        self._apply = apply
        self._report = report or _log_problems
        self._interval = interval_s
        self._seen = signature(path)  # what the gateway was started from
        self._pending: Signature | None = None  # a change read once, applied if the next read agrees
        self.applied = 0
        self.refused = 0
        self.changed = threading.Condition()

    def wait(
        self, *, applied: int | None = None, refused: int | None = None, timeout_s: float = 10.0
    ) -> bool:
        """Wait until at least this many changes were applied (or refused); False on timeout."""

        def done() -> bool:
            return (applied is None or self.applied >= applied) and (
                refused is None or self.refused >= refused
            )

        with self.changed:
            return self.changed.wait_for(done, timeout=timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()

    def poll(self) -> None:
        """One read of the folder (the thread calls it every interval_s; tests call it directly)."""
        now = signature(self.path)
        if now == self._seen:
            self._pending = None
        elif now != self._pending:
            self._pending = now  # changed since the last read: wait for it to settle
        else:
            self._seen, self._pending = now, None
            self._settled()

    def _settled(self) -> None:
        try:
            manifests = load_path(self.path)
        except InvalidManifests as exc:
            self._count(refused=True)
            self._report(exc.problems)
            return
        try:
            self._apply(manifests)
        except Exception:  # the store or the audit was unavailable: say so and try again on the next edit
            log.exception("the manifests changed but could not be applied; trying again in %gs", RETRY_S)
            self._stop.wait(RETRY_S)
            self._seen = ()  # not applied: the next polls see a change and try again once settled
            return
        self._count(refused=False)

    def _count(self, *, refused: bool) -> None:
        with self.changed:
            if refused:
                self.refused += 1
            else:
                self.applied += 1
            self.changed.notify_all()


def _log_problems(problems: list[str]) -> None:
    log.error(
        "the manifests changed but do not load; nothing was changed, the last good state stays:\n  %s",
        "\n  ".join(problems),
    )
