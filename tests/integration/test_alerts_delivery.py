"""Alert delivery to a real local webhook sink: retried, deduplicated across senders."""

from __future__ import annotations

import asyncio

from tests.support.recorder import RecordedRequest, RecordingUpstream, Reply

from tollgate.audit.alerts import Alert, AlertSender
from tollgate.settings import AlertSettings
from tollgate.store.redis import RedisStore

ALERT = Alert("cap_reached", "agents/bot", "cap:agents/bot:2026-11-25", 60, "cap reached")


async def test_an_alert_is_retried_until_the_webhook_accepts_it(store: RedisStore) -> None:
    answers = iter([500, 502, 200])

    def flaky(_: RecordedRequest) -> Reply:
        return Reply(next(answers, 200), {"ok": True})

    with RecordingUpstream(flaky) as sink:
        sender = AlertSender(AlertSettings(slack_webhook_url=sink.url, attempts=5), store)
        sender.start()
        sender.submit([ALERT])
        await asyncio.wait_for(sender.stop(), 30)
    assert len(sink.requests) == 3
    assert sink.requests[-1].json() == {"text": "cap reached"}
    assert sender.delivered == 1


async def test_the_same_alert_from_two_replicas_is_sent_once(store: RedisStore) -> None:
    with RecordingUpstream(Reply(200, {"ok": True})) as sink:
        senders = [AlertSender(AlertSettings(slack_webhook_url=sink.url), store) for _ in range(2)]
        for s in senders:
            s.start()
            s.submit([ALERT, ALERT])
        for s in senders:
            await asyncio.wait_for(s.stop(), 30)
    assert len(sink.requests) == 1


async def test_a_full_queue_drops_the_oldest_alert_and_counts_it(store: RedisStore) -> None:
    with RecordingUpstream(Reply(200, {"ok": True})) as sink:
        sender = AlertSender(AlertSettings(slack_webhook_url=sink.url), store, queue_size=2)
        sender.submit([Alert("k", "a", f"d{i}", 60, f"t{i}") for i in range(3)])
        assert sender.dropped == 1
        sender.start()
        await asyncio.wait_for(sender.stop(), 30)
    assert [r.json()["text"] for r in sink.requests] == ["t1", "t2"]
