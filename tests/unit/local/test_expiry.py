"""Local mode's approval sweep is fail-safe: an error in a round is logged, never raised, and the thread
keeps sweeping while Redis is away. What it marks is tests/e2e/test_approvals.py's to show."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest

from tollgate.errors import StoreUnavailable
from tollgate.local.expiry import ApprovalSweeper, sweep
from tollgate.local.processes import free_port
from tollgate.store.base import ApprovalRecord

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


class Failing:
    """The Approvals a sweep reads, failing as `error` says."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def approvals(self) -> list[ApprovalRecord]:
        raise self.error


@pytest.mark.parametrize(
    ("error", "level"),
    [
        pytest.param(StoreUnavailable("redis: ConnectionError"), logging.WARNING, id="Redis away"),
        pytest.param(RuntimeError("a bug"), logging.ERROR, id="a bug"),
    ],
)
async def test_a_failed_round_is_logged_not_raised(
    error: Exception, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    await sweep(Failing(error), NOW)  # type: ignore[arg-type]  (only approvals() is reached)
    assert [(r.levelno, r.getMessage().startswith("approvals not swept")) for r in caplog.records] == [
        (level, True)
    ]


def test_the_sweeper_keeps_going_while_redis_is_away(caplog: pytest.LogCaptureFixture) -> None:
    sweeper = ApprovalSweeper(f"redis://127.0.0.1:{free_port()}", interval_s=0.01).start()
    try:
        deadline = time.monotonic() + 10
        while sweeper.rounds < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sweeper.rounds >= 3 and sweeper._thread.is_alive()
    finally:
        sweeper.stop()
    assert not sweeper._thread.is_alive()
    assert any("approvals not swept" in r.getMessage() for r in caplog.records)
