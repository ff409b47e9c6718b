"""Shared fixtures. Integration and e2e tests run real processes on free ports, started by the same
launcher `tollgate local` uses (tollgate.local.processes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tollgate.local.processes import ManagedProcess, start_redis
from tollgate.store.redis import RedisStore


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tier markers come from the folder, so `pytest -m "not e2e"` works without decorating every test.
    # Only the folder right under tests/ names the tier (tests/unit/operator is unit).
    tests = Path(__file__).parent
    for item in items:
        path = Path(str(item.fspath))
        tier = path.relative_to(tests).parts[0] if path.is_relative_to(tests) else ""
        if tier in ("integration", "e2e", "operator", "security"):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    proc = start_redis(workdir=tmp_path_factory.mktemp("redis"))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def store(redis_server: ManagedProcess) -> AsyncIterator[RedisStore]:
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    s = RedisStore.from_url(redis_server.url, audited=False)  # no audit here: grants are marked as written
    try:
        yield s
    finally:
        await s.close()
