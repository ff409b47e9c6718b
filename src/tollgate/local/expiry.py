"""Mark approvals that ran out of time expired, in local mode (tollgate.reconcile.approvals.expire).

In a cluster the operator does this in its SpendApproval mirror loop. Local mode has no operator, so
`tollgate local`, which stands in for it (it applies the manifests and hosts `tollgate approve`'s Redis),
runs this loop instead. Not the audit ingester, although it runs in both: in a cluster it is a sidecar of
every Envoy replica, so it would sweep beside the operator and once per replica, and it only reads
approvals. Marking one expired writes it to Redis's decision log, which the ingester copies into
tollgate_approval_events and counts in tollgate_approval_decisions_total{state="expired"}.

Fail-safe: an error (Redis away, or a bug) is logged and the next round tries again; the thread never
ends before stop(). A call is refused once its approval is past its expiry whether or not it was marked,
so a late sweep only delays the record, never lets a call through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from tollgate.errors import TollgateError
from tollgate.local.background import Background
from tollgate.reconcile.approvals import expire
from tollgate.store.base import Approvals
from tollgate.store.redis import RedisStore

log = logging.getLogger("tollgate.local")
SWEEP_S = 1.0


class ApprovalSweeper(Background):
    """Every `interval_s`, marks the approvals of the Redis at `redis_url` that are past their expiry."""

    def __init__(
        self,
        redis_url: str,
        *,
        interval_s: float = SWEEP_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__("tollgate-approval-sweeper")
        self._url = redis_url
        self._interval = interval_s
        self._clock = clock
        self.rounds = 0  # sweeps finished, failed ones included: a caller can wait for the next one

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                asyncio.run(self._loop())
            except Exception:  # e.g. no client could be made for the URL: try again, never end the thread
                log.exception("the approval sweeper stopped, restarting it in %gs", self._interval)
                self._stop.wait(self._interval)

    async def _loop(self) -> None:
        store = RedisStore.from_url(self._url)
        try:
            while not self._stop.is_set():
                await sweep(store, self._clock())
                self.rounds += 1
                await asyncio.to_thread(self._stop.wait, self._interval)
        finally:
            await store.close()


async def sweep(store: Approvals, now: datetime) -> None:
    """One round: expire what is due, logging each; an error is logged, never raised."""
    try:
        for gone in await expire(store, now):
            log.info("approval %s of %s expired", gone.id, gone.key_id)
    except TollgateError as exc:  # Redis away: nothing expires until it is back
        log.warning("approvals not swept, retrying next round: %s", exc)
    except Exception:  # a bug must not end the loop: expiries would silently stop being recorded
        log.exception("approvals not swept, retrying next round")
