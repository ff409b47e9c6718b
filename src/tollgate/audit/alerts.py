"""Alerts from the audit stream to a Slack-compatible incoming webhook.

What is worth waking someone for: a key near or at its daily cap, a shared budget (SpendBudget) near or
at its own, a burst of denials from one key
(an agent stuck in a loop), a revoked, expired or suspended key still calling, and a call whose
outcome is unknown (money may have moved: its cost stays counted, and a human should check), a
vendor reporting it moved more than was reserved, and a call waiting for a person's approval. Each alert is
sent once per window across every replica (a Redis claim), delivered with retries from a
background task, and never blocks ingestion: when the queue is full the oldest alert is dropped
and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Iterable
from datetime import datetime

import httpx

from tollgate.audit.record import AuditRow
from tollgate.audit.settle import UNKNOWN
from tollgate.decide.rules import Rule
from tollgate.errors import StoreUnavailable
from tollgate.money import format_usd
from tollgate.record import record
from tollgate.settings import AlertSettings
from tollgate.store.base import ClaimStore

log = logging.getLogger("tollgate.alerts")
DEAD_KEY_RULES = {Rule.KEY_REVOKED.value, Rule.KEY_EXPIRED.value, Rule.KEY_SUSPENDED.value}
DAY_S = 24 * 3600


@record
class Alert:
    kind: str  # cap_warning | cap_reached | budget_warning | budget_reached | denial_burst
    # | dead_key_calling | settlement_unknown | vendor_moved_more | approval_pending
    key_id: str
    dedup: str  # one alert per dedup name per ttl_s
    ttl_s: int
    text: str


class AlertRules:
    """Rows in, alerts out. Pure but for the per-key windows of recent denials it keeps."""

    def __init__(self, settings: AlertSettings) -> None:
        self.s = settings
        self._denials: dict[str, deque[datetime]] = defaultdict(deque)

    def evaluate(self, rows: Iterable[AuditRow]) -> list[Alert]:
        alerts: list[Alert] = []
        for row in rows:
            key = row.vault_key_id
            if key is None:
                continue
            day = row.day.isoformat()
            if row.rule == Rule.CAP_EXCEEDED.value:
                alerts.append(Alert("cap_reached", key, f"cap:{key}:{day}", DAY_S, self._cap_text(row)))
            elif row.decision == "allow" and self._over_warn(row):
                pct = self.s.cap_warn_percent
                text = (
                    f":warning: Vault key {key} has spent {format_usd(row.spent_micro_usd or 0)} of its "
                    f"{format_usd(row.cap_micro_usd or 0)} daily cap ({pct}%+), policy {row.policy_id}."
                )
                alerts.append(Alert("cap_warning", key, f"warn{pct}:{key}:{day}", DAY_S, text))
            alerts.extend(self._budget(row))
            if row.settlement == UNKNOWN:
                alerts.append(
                    Alert("settlement_unknown", key, f"unknown:{row.row_id}", DAY_S, self._unknown_text(row))
                )
            if row.settled_micro_usd is not None and row.settled_micro_usd > row.cost_micro_usd:
                alerts.append(
                    Alert("vendor_moved_more", key, f"more:{row.row_id}", DAY_S, self._more_text(row))
                )
            if row.rule == Rule.APPROVAL_REQUIRED.value and row.approval_id:
                # Once per approval, however often the agent retries before someone decides.
                alerts.append(
                    Alert(
                        "approval_pending",
                        key,
                        f"approval:{row.approval_id}",
                        DAY_S,
                        self._approval_text(row),
                    )
                )
            if row.rule in DEAD_KEY_RULES:
                hour = row.at.strftime("%Y%m%dT%H")
                text = f":no_entry: Vault key {key} is still calling after it was {row.rule.removeprefix('tollgate_key_')} ({row.method} {row.path})."
                alerts.append(Alert("dead_key_calling", key, f"dead:{key}:{hour}", 3600, text))
            if row.decision == "deny":
                alerts.extend(self._burst(key, row))
        return alerts

    def _budget(self, row: AuditRow) -> list[Alert]:
        """A shared budget at the warning share of its cap, or at its cap: once a day per budget (the
        budget's day, from whichever key's call crossed it)."""
        b, cap, spent = row.budget_id, row.budget_cap_micro_usd, row.budget_spent_micro_usd
        if not b or not cap or spent is None:
            return []
        day = row.budget_day or row.day.strftime("%Y%m%d")
        key = row.vault_key_id or "-"
        if row.rule == Rule.BUDGET_EXCEEDED.value:
            text = (
                f":octagonal_sign: SpendBudget {b} reached its daily cap ({format_usd(spent)} of "
                f"{format_usd(cap)}); every key under it is refused money calls until the day resets "
                f"(refused: vault key {key}, policy {row.policy_id})."
            )
            return [Alert("budget_reached", key, f"budget:{b}:{day}", DAY_S, text)]
        pct = self.s.cap_warn_percent
        if row.decision == "allow" and spent * 100 >= cap * pct:
            text = (
                f":warning: SpendBudget {b} has spent {format_usd(spent)} of its {format_usd(cap)} daily "
                f"cap ({pct}%+), across every key under it (last: vault key {key}, {row.vendor})."
            )
            return [Alert("budget_warning", key, f"bwarn{pct}:{b}:{day}", DAY_S, text)]
        return []

    @staticmethod
    def _more_text(row: AuditRow) -> str:
        # Counted in full (the vendor is the truth), which may take the key past its cap's headroom.
        return (
            f":rotating_light: {row.vendor} reports {row.vendor_object_id or 'an object'} moved "
            f"{format_usd(row.settled_micro_usd or 0)}, more than the {format_usd(row.cost_micro_usd)} "
            f"Tollgate reserved (vault key {row.vault_key_id}, {row.method} {row.path}); the larger amount "
            "is counted and may exceed the daily cap."
        )

    @staticmethod
    def _approval_text(row: AuditRow) -> str:
        aid = row.approval_id
        run = f", run {row.agent_run_id}" if row.agent_run_id else ""
        return (
            f":raised_hand: Approval {aid} is waiting: vault key {row.vault_key_id} asks for {row.method} "
            f"{row.path} ({row.endpoint or '-'}) costing more than policy {row.policy_id} lets pass "
            f"unapproved{run}. Approve with `kubectl annotate spendapproval {aid} tollgate.dev/decision=approve` "
            f"(or `tollgate approve {aid}` in local mode), or reject with decision=reject."
        )

    def _over_warn(self, row: AuditRow) -> bool:
        if not row.cap_micro_usd or row.spent_micro_usd is None:
            return False
        return row.spent_micro_usd * 100 >= row.cap_micro_usd * self.s.cap_warn_percent

    def _cap_text(self, row: AuditRow) -> str:
        return (
            f":octagonal_sign: Vault key {row.vault_key_id} reached its daily cap "
            f"({format_usd(row.spent_micro_usd or 0)} of {format_usd(row.cap_micro_usd or 0)}); "
            f"further spend is refused until the day resets. Policy {row.policy_id}, run {row.agent_run_id or '-'}."
        )

    def _unknown_text(self, row: AuditRow) -> str:
        seen = row.response_code_details or "no answer"
        flags = f", flags {row.response_flags}" if row.response_flags else ""
        idem = f", idempotency key {row.idempotency_key}" if row.idempotency_key else ""
        return (
            f":grey_question: Vault key {row.vault_key_id}: {row.method} {row.path} "
            f"({format_usd(row.cost_micro_usd)}) has an unknown outcome (status {row.vendor_status}, "
            f"{seen}{flags}{idem}); its cost stays counted against the cap. Check the vendor for it."
        )

    def _burst(self, key: str, row: AuditRow) -> list[Alert]:
        window = self.s.denial_burst_window_s
        recent = self._denials[key]
        recent.append(row.at)
        while recent and (row.at - recent[0]).total_seconds() > window:
            recent.popleft()
        if len(recent) < self.s.denial_burst:
            return []
        bucket = int(row.at.timestamp()) // window
        text = (
            f":rotating_light: Vault key {key} was denied {len(recent)} times in {window}s "
            f"(last: {row.rule} on {row.method} {row.path}). An agent may be stuck in a loop."
        )
        return [Alert("denial_burst", key, f"burst:{key}:{bucket}", window * 2, text)]


class AlertSender:
    """Delivers alerts in the background: deduplicated across replicas, retried with backoff."""

    def __init__(self, settings: AlertSettings, store: ClaimStore | None, *, queue_size: int = 1000) -> None:
        assert settings.slack_webhook_url is not None
        self.url = settings.slack_webhook_url.get_secret_value()
        self.s = settings
        self.store = store
        self.queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self.dropped = 0
        self.delivered = 0
        self._seen_locally: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def submit(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            if self.queue.full():
                self.queue.get_nowait()
                self.queue.task_done()  # the dropped alert counts as handled, or stop() would wait forever
                self.dropped += 1
            self.queue.put_nowait(alert)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Deliver what is queued (bounded by each alert's retries), then stop."""
        await self.queue.join()
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=self.s.timeout_s) as client:
            while True:
                alert = await self.queue.get()
                try:
                    if await self._first(alert):
                        await self._deliver(client, alert)
                finally:
                    self.queue.task_done()

    async def _first(self, alert: Alert) -> bool:
        if self.store is not None:
            try:
                return await self.store.claim_once(alert.dedup, alert.ttl_s)
            except StoreUnavailable:
                pass  # fall back to this process's memory: a duplicate beats a lost alert
        if alert.dedup in self._seen_locally:
            return False
        self._seen_locally.add(alert.dedup)
        return True

    async def _deliver(self, client: httpx.AsyncClient, alert: Alert) -> None:
        delay = 0.5
        for attempt in range(1, self.s.attempts + 1):
            try:
                r = await client.post(self.url, json={"text": alert.text})
                if r.status_code < 300:
                    self.delivered += 1
                    return
                problem = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            if attempt < self.s.attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
        log.warning(
            "alert %s for %s not delivered after %d attempts (%s)",
            alert.kind,
            alert.key_id,
            self.s.attempts,
            problem,
        )
