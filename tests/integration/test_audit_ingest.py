"""The ingest pipeline on a real log file, real Redis and both SQL stores, through store outages."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from tests.builders import grant
from tests.integration.test_audit_sql import postgres_database
from tests.support.tcp_proxy import TcpProxy
from tests.unit.audit.test_record import ALLOWED, line

from tollgate.audit import ingest
from tollgate.audit.ingest import AuditPipeline, LogTail
from tollgate.audit.sql import AuditStore, AuditStoreUnavailable
from tollgate.store.redis import RedisStore

KEY = "agents/support-bot"


def write(log: Path, *lines: str) -> None:
    with log.open("a") as f:
        for text in lines:
            f.write(text + "\n")


def test_the_tail_returns_whole_lines_only_and_restarts_on_a_new_file(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text('{"a":1}\n{"b":')
    tail = LogTail(log)
    lines, cp = tail.read(None)
    assert [text for text, _ in lines] == ['{"a":1}'] and cp.offset == 8
    assert tail.read(cp)[0] == []  # the half-written line waits
    with log.open("a") as f:
        f.write("2}\n")
    lines, cp2 = tail.read(cp)
    assert [text for text, _ in lines] == ['{"b":2}']
    log.unlink()
    log.write_text('{"c":3}\n')  # rotated: a new file under the same name
    assert [text for text, _ in tail.read(cp2)[0]] == ['{"c":3}']


@pytest.fixture(params=["sqlite", "postgresql"])
def outage(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[AuditStore, TcpProxy | None, Path]]:
    """An audit store plus a way to make it unreachable: a TCP proxy for PostgreSQL, a held lock for SQLite."""
    if request.param == "sqlite":
        db = tmp_path / "audit.db"
        store = AuditStore(create_engine(f"sqlite:///{db}", connect_args={"timeout": 0.2}))
        store.migrate()
        yield store, None, db
        store.dispose()
        return
    for url in postgres_database():
        host_port = url.split("@", 1)[1].split("/", 1)[0]
        host, port = host_port.split(":")
        with TcpProxy(host, int(port)) as proxy:
            store = AuditStore.from_url(url.replace(host_port, f"127.0.0.1:{proxy.port}"))
            store.migrate()
            yield store, proxy, tmp_path
            store.dispose()


async def test_rows_written_while_the_store_is_down_arrive_when_it_returns(
    outage: tuple[AuditStore, TcpProxy | None, Path], tmp_path: Path, store: RedisStore
) -> None:
    audit, proxy, db = outage
    log = tmp_path / "access.log"
    pipeline = AuditPipeline(log, audit, store, source="envoy")
    write(log, *(line(request_id=f"before-{i}") for i in range(5)))
    assert await pipeline.run_once() == 5

    import sqlite3

    lock = None
    if proxy is not None:
        proxy.cut()
    else:
        lock = sqlite3.connect(db)
        lock.execute("BEGIN EXCLUSIVE")
    write(log, *(line(request_id=f"during-{i}") for i in range(7)))
    with pytest.raises(AuditStoreUnavailable):
        await pipeline.run_once()
    with pytest.raises(AuditStoreUnavailable):
        await pipeline.run_once()  # still down: still nothing lost, nothing advanced
    if proxy is not None:
        proxy.restore()
    else:
        assert lock is not None
        lock.rollback()
        lock.close()

    write(log, line(request_id="after"))
    assert await pipeline.run_once() == 8
    assert audit.count() == 13
    ids = {r[0] for r in audit.query("SELECT row_id FROM tollgate_calls")[1]}
    assert {f"during-{i}" for i in range(7)} <= ids and "after" in ids
    cp = audit.checkpoint("envoy")
    assert cp is not None and cp.offset == log.stat().st_size


async def test_a_vendor_refusal_releases_the_reservation_and_a_success_settles_it(
    tmp_path: Path, store: RedisStore
) -> None:
    g = grant()
    await store.put_grant(g)
    refused = await store.commit(KEY, g.version, "stripe", "20261125", 15_000_000, 100_000_000)
    accepted = await store.commit(KEY, g.version, "stripe", "20261125", 15_000_000, 100_000_000)
    assert await store.spent(KEY, "stripe", "20261125") == 30_000_000

    def entry(request_id: str, reservation: str | None, status: int) -> str:
        authz = {**ALLOWED["authz"], "vault_key_id": KEY, "reservation_id": reservation}  # type: ignore[dict-item]
        # via_upstream: the status is Stripe's own answer (a 400 Envoy wrote itself would prove nothing)
        return line(
            request_id=request_id, authz=authz, response_code=status, response_code_details="via_upstream"
        )

    log = tmp_path / "access.log"
    write(log, entry("refused", refused.reservation_id, 400), entry("accepted", accepted.reservation_id, 200))
    audit = AuditStore.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    audit.migrate()
    pipeline = AuditPipeline(log, audit, store)
    assert await pipeline.run_once() == 2
    assert pipeline.parsed.parsed == 2  # settled and written from one parse of each line
    assert await store.spent(KEY, "stripe", "20261125") == 15_000_000  # the refused call's $15 came back
    settled = dict(audit.query("SELECT row_id, settlement FROM tollgate_calls")[1])
    assert settled == {"refused": "released", "accepted": "settled"}
    # a crash before the checkpoint moved would replay the lines: settlement is idempotent
    pipeline2 = AuditPipeline(log, audit, store, source="replay")
    await pipeline2.run_once()
    assert await store.spent(KEY, "stripe", "20261125") == 15_000_000


def test_the_tail_drains_a_renamed_log_before_the_reopened_one_also_after_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write(log, '{"n":1}')
    tail = LogTail(log)
    lines, cp = tail.read(None)
    assert tail.caught_up(cp) == log.stat().st_size
    log.rename(tmp_path / "access.log.1")
    write(tmp_path / "access.log.1", '{"n":2}')  # the writer had not reopened yet
    write(log, '{"n":3}')  # now it has
    assert tail.caught_up(cp) is None

    restarted = LogTail(log)  # e.g. the ingester died right after the rename
    lines, cp = restarted.read(cp)
    assert [t for t, _ in lines] == ['{"n":2}']
    lines, cp = restarted.read(cp)
    assert [t for t, _ in lines] == ['{"n":3}']
    assert restarted.read(cp)[0] == [] and restarted.caught_up(cp) == log.stat().st_size


def test_a_renamed_log_nothing_replaced_is_still_followed(tmp_path: Path) -> None:
    # The writer was never told to reopen: it goes on appending to the renamed file.
    log = tmp_path / "access.log"
    write(log, '{"n":1}')
    tail = LogTail(log)
    _, cp = tail.read(None)
    log.rename(tmp_path / "access.log.1")
    write(tmp_path / "access.log.1", '{"n":2}')
    lines, cp = tail.read(cp)
    assert [t for t, _ in lines] == ['{"n":2}']
    assert tail.read(cp) == ([], cp)


async def test_a_writer_that_failed_to_reopen_is_asked_again_and_no_row_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "REOPEN_RETRY_S", 0.0)
    log, renamed = tmp_path / "access.log", tmp_path / "access.log.1"
    asked: list[bool] = []

    async def reopen() -> None:  # the first request fails (admin not up yet), the second one works
        asked.append(True)
        if len(asked) == 1:
            raise ConnectionError("admin refused")
        log.touch()

    audit = AuditStore.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    audit.migrate()
    pipeline = AuditPipeline(log, audit, None, source="envoy", rotate_bytes=1, reopen=reopen)
    write(log, line(request_id="r0"))
    assert await pipeline.run_once() == 1
    assert await pipeline.run_once() == 0  # caught up: renamed, and the reopen fails
    assert len(asked) == 1 and not log.exists()
    write(renamed, line(request_id="r1"))  # so the writer goes on in the renamed file
    assert await pipeline.run_once() == 1
    assert await pipeline.run_once() == 0  # drained: asked again, and it reopens
    assert len(asked) == 2 and log.exists()
    write(log, line(request_id="r2"))
    assert await pipeline.run_once() == 1
    ids = sorted(r[0] for r in audit.query("SELECT row_id FROM tollgate_calls")[1])
    assert ids == ["r0", "r1", "r2"]
    audit.dispose()


async def test_an_ingester_restarted_between_rename_and_reopen_asks_the_writer_to_reopen(
    tmp_path: Path,
) -> None:
    log, renamed = tmp_path / "access.log", tmp_path / "access.log.1"
    asked: list[bool] = []

    async def reopen() -> None:
        asked.append(True)
        log.touch()

    audit = AuditStore.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    audit.migrate()
    write(log, line(request_id="r0"))
    assert await AuditPipeline(log, audit, None, source="envoy").run_once() == 1
    log.rename(renamed)  # ...and the ingester died before asking the writer to reopen
    write(renamed, line(request_id="r1"))
    restarted = AuditPipeline(log, audit, None, source="envoy", rotate_bytes=1 << 20, reopen=reopen)
    assert await restarted.run_once() == 1
    assert not asked  # the renamed file is drained first
    assert await restarted.run_once() == 0
    assert asked == [True] and log.exists()
    write(log, line(request_id="r2"))
    assert await restarted.run_once() == 1
    assert audit.count() == 3
    audit.dispose()


async def test_a_locked_database_holds_the_rows_back_but_never_a_release(
    tmp_path: Path, store: RedisStore
) -> None:
    """While SQLite is locked, every refusal is released within about one attempt on the database (its
    lock wait), however long the lock lasts: the rows wait with their own backoff, settlement does not."""
    g = grant()
    await store.put_grant(g)
    db = tmp_path / "audit.db"
    audit = AuditStore.from_url(f"sqlite:///{db}", sqlite_lock_wait_s=0.3)
    audit.migrate()
    log = tmp_path / "access.log"
    log.touch()
    pipeline = AuditPipeline(log, audit, store, source="envoy")
    stop = asyncio.Event()
    task = asyncio.create_task(pipeline.run(stop))

    async def until(done: Callable[[], Awaitable[bool]], within_s: float) -> float:
        start = time.monotonic()
        while not await done():
            assert time.monotonic() - start < within_s, f"not within {within_s}s"
            await asyncio.sleep(0.01)
        return time.monotonic() - start

    async def rows(n: int) -> bool:
        return await asyncio.to_thread(audit.count) == n

    async def released() -> bool:
        return await store.spent(KEY, "stripe", "20261125") == 0

    def refused(request_id: str, reservation: str | None) -> str:
        authz = {**ALLOWED["authz"], "vault_key_id": KEY, "reservation_id": reservation}  # type: ignore[dict-item]
        return line(
            request_id=request_id, authz=authz, response_code=402, response_code_details="via_upstream"
        )

    write(log, line(request_id="first"))
    await until(lambda: rows(1), 5)
    lock = sqlite3.connect(db)
    lock.execute("BEGIN EXCLUSIVE")
    waits = []
    try:
        for i in range(5):  # over some 6 s of lock: the rows' backoff grows past a second meanwhile
            c = await store.commit(KEY, g.version, "stripe", "20261125", 15_000_000, 100_000_000)
            assert not await released()
            write(log, refused(f"refused-{i}", c.reservation_id))
            waits.append(await until(released, 5))
            await asyncio.sleep(0.9)
    finally:
        lock.rollback()
        lock.close()
    assert max(waits) < 1.0, waits
    await until(lambda: rows(6), 15)  # every row, once the database is free
    stop.set()
    await task
