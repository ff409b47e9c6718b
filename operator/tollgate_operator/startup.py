"""Operator start and stop: kopf's settings (finalizer, annotation prefix, Event posting, watch
timeouts), the shared clients in `memo`, and the periodic resync; cleanup closes them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from typing import Any

import kopf

from tollgate.credentials import CredentialBox
from tollgate.errors import TollgateError
from tollgate.logging_setup import mask_handlers
from tollgate.reconcile.context import ReconcileContext
from tollgate.reconcile.resync import resync
from tollgate.reconcile.tokens import VaultKeyObject
from tollgate.reconcile.vault_keys import Outcome
from tollgate.store.base import Store
from tollgate.store.redis import RedisStore
from tollgate_operator.confinement import is_agent_namespace
from tollgate_operator.kube_secrets import KubeApi
from tollgate_operator.settings import ProcessSettings

FINALIZER = "tollgate.dev/finalizer"
ANNOTATION_PREFIX = "tollgate.dev"
_DELETED_REMEMBERED = 10_000


class _QuietTimers(logging.Filter):
    """Drop kopf's "Timer ... succeeded." line: status timers run every few seconds for every object."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Timer 'refresh_") and message.endswith("succeeded."))


class KeyLocks:
    """One asyncio.Lock per key id, so a key's handler, a policy fan-out, a vendor-key change and the
    resync never interleave a revoke with an apply; and the uids of keys whose deletion was handled,
    so work that began before a deletion cannot bring the grant back."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._deleted: OrderedDict[str, None] = OrderedDict()

    def __call__(self, key_id: str) -> asyncio.Lock:
        return self._locks.setdefault(key_id, asyncio.Lock())

    def deleted(self, uid: str) -> None:
        self._deleted[uid] = None
        while len(self._deleted) > _DELETED_REMEMBERED:
            self._deleted.popitem(last=False)

    def is_live(self, key: VaultKeyObject) -> bool:
        return key.uid not in self._deleted


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    process: ProcessSettings = memo.get("settings") or ProcessSettings()  # `kopf run` passes no memo
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATION_PREFIX)
    # Handler logs stay logs; the Events users see are the explicit transitions (Ready, Revoked, ...).
    settings.posting.level = logging.WARNING
    logging.getLogger("kopf.objects").addFilter(_QuietTimers())
    mask_handlers()  # kopf set up the handlers (--log-format): mask credentials in them, tracebacks too
    # A real API server ends a watch after its own timeout; the client gives up a little later.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30

    namespaces = frozenset(process.operator.namespaces) or None
    memo.settings = process
    memo.box = CredentialBox(process.credentials.plain())  # no key: fail now, not on the first call
    # Typed as the whole Store: the handlers hand it to reconcile (GrantStore) and status (StatusStore).
    store: Store = RedisStore.from_url(
        process.redis.url, timeout_s=process.redis.timeout_ms / 1000, audited=process.redis.audited
    )
    memo.store = store
    memo.secrets = kube = await KubeApi.connect(namespaces)
    # Handlers read the SpendBudgets from kopf's index, the resync from its own listing (handlers.py).
    memo.reconcile = ReconcileContext.from_api(store, memo.box, kube)
    memo.locks = KeyLocks()
    memo.outcomes = {}  # key id → Outcome of its last reconcile; the status timer reads it
    memo.namespace_labels = {}  # namespace → labels, from the namespace watch (confinement)
    memo.confine_retry = set()  # namespaces whose egress policy could not be reconciled
    memo.resync_task = asyncio.create_task(_resync_forever(memo, logger), name="tollgate resync")
    from tollgate_operator.approvals import mirror_forever  # approvals imports kube_secrets, as this does

    memo.approvals_task = asyncio.create_task(mirror_forever(memo, logger), name="tollgate approvals")


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    for name in ("resync_task", "approvals_task"):
        task: asyncio.Task[None] | None = memo.get(name)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if (store := memo.get("store")) is not None:
        await store.close()
    if (secrets := memo.get("secrets")) is not None:
        await secrets.close()


async def _reconfine(memo: kopf.Memo, logger: kopf.Logger) -> None:
    """Every known namespace's egress policy checked again: a tamper whose watch event was missed
    (the operator away, the API unreachable) is repaired within one resync interval."""
    from tollgate_operator.handlers import confine  # handlers imports this module

    confinement = memo.settings.operator.confinement
    for namespace, labels in list(memo.namespace_labels.items()):
        # Agent namespaces, and any whose last reconcile failed (a release the API refused then); a
        # label removed while the operator was away is seen at its start, when every namespace is listed.
        agent = confinement is not None and is_agent_namespace(namespace, labels, confinement)
        if agent or namespace in memo.confine_retry:
            await confine(memo, namespace, labels, logger)


async def _resync_forever(memo: kopf.Memo, logger: kopf.Logger) -> None:
    """At start and every resync interval: restore grants missing from Redis (a flush) and revoke
    grants no VaultKey stands behind (deleted while the operator was away)."""
    interval = memo.settings.operator.resync_interval_s
    locks: KeyLocks = memo.locks
    outcomes: dict[str, Outcome] = memo.outcomes
    while True:
        try:
            report = await resync(
                memo.reconcile,
                memo.secrets.list_cluster,
                guard=locks,
                is_live=locks.is_live,
            )
        except TollgateError as exc:  # Redis or the API server away: try again next round
            logger.warning(f"Resync failed, retrying in {interval:g}s: {exc}")
        else:
            for result in report.restored:
                outcomes[result.key_id] = result.outcome
            # Keys refused on purpose (no policy, no vendor key) are re-checked every round: not news.
            restored = [r.key_id for r in report.restored if r.outcome.ready]
            if restored or report.revoked:
                logger.info(f"Resync restored the grants of {restored}; revoked orphans {report.revoked}")
        await _reconfine(memo, logger)
        await asyncio.sleep(interval)
