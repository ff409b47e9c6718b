"""The audit store on SQLite and on PostgreSQL: the same tests, both databases."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import MetaData, create_engine, text
from tests.support.ci import unavailable
from tests.unit.audit.test_record import ALLOWED, line

from tollgate.audit.record import from_line
from tollgate.audit.sql import SCHEMA_VERSION, AuditStore, AuditStoreUnavailable, Checkpoint, calls

PG_ADMIN = os.environ.get("TOLLGATE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def postgres_database() -> Iterator[str]:
    """A throwaway database on the machine's PostgreSQL; skipped where none runs (never in CI)."""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 2})
    try:
        with admin.connect() as c:
            c.execute(text("SELECT 1"))
    except Exception as exc:  # no server here: a fresh machine without PostgreSQL
        unavailable(f"no PostgreSQL at {PG_ADMIN}: {type(exc).__name__}: {exc}")
    name = "tollgate_test_" + secrets.token_hex(4)
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def audit_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        yield from postgres_database()


@pytest.fixture
def audit(audit_url: str) -> Iterator[AuditStore]:
    store = AuditStore.from_url(audit_url)
    store.migrate()
    yield store
    store.dispose()


def test_migrate_is_versioned_and_idempotent(audit: AuditStore) -> None:
    assert audit.migrate() == SCHEMA_VERSION
    assert audit.query("SELECT MAX(version) FROM tollgate_schema_versions")[1] == [(SCHEMA_VERSION,)]


V4_COLUMNS = (
    "params", "vendor_object_id", "vendor_object", "vendor_amount_minor", "vendor_currency", "vendor_state",
    "settled_micro_usd",
)  # fmt: skip


def test_a_schema_3_store_migrates_to_4_keeping_its_rows(audit: AuditStore) -> None:
    # Wind the store back to schema 3: without the columns of schema 4, holding a row written then.
    with audit.engine.begin() as c:
        c.execute(text("DROP INDEX ix_tollgate_calls_vendor_object"))
        for name in V4_COLUMNS:
            c.execute(text(f"ALTER TABLE tollgate_calls DROP COLUMN {name}"))
        c.execute(text("DELETE FROM tollgate_schema_versions WHERE version >= 4"))
        c.execute(
            text(
                "INSERT INTO tollgate_calls (row_id, at, day, decision, rule, cost_micro_usd, settlement) "
                "VALUES ('old', :at, :day, 'allow', 'tollgate_allowed', 15000000, 'settled')"
            ),
            {"at": datetime(2026, 11, 30, 12, tzinfo=UTC), "day": date(2026, 11, 30)},
        )
    assert audit.migrate() == SCHEMA_VERSION == 6
    seen = {"id": "re_1", "object": "refund", "amount": "1500", "currency": "usd"}
    audit.append([from_line(line(request_id="new", vendor_response=seen), "f@1")], "src", Checkpoint("x", 1))
    cols, data = audit.query("SELECT * FROM tollgate_calls ORDER BY row_id")
    got = {r[cols.index("row_id")]: dict(zip(cols, r, strict=True)) for r in data}
    assert got["old"]["cost_micro_usd"] == 15_000_000 and got["old"]["settlement"] == "settled"
    assert all(got["old"][c] is None for c in V4_COLUMNS)
    assert (got["new"]["vendor_object_id"], got["new"]["vendor_amount_minor"]) == ("re_1", 1500)
    assert audit.migrate() == 6  # and again: nothing to do


def test_a_schema_4_store_gains_the_approval_column_keeping_its_rows(audit: AuditStore) -> None:
    with audit.engine.begin() as c:
        c.execute(text("ALTER TABLE tollgate_calls DROP COLUMN approval_id"))
        c.execute(text("DELETE FROM tollgate_schema_versions WHERE version >= 5"))
        c.execute(
            text(
                "INSERT INTO tollgate_calls (row_id, at, day, decision, rule, cost_micro_usd) "
                "VALUES ('old', :at, :day, 'allow', 'tollgate_allowed', 15000000)"
            ),
            {"at": datetime(2026, 11, 30, 12, tzinfo=UTC), "day": date(2026, 11, 30)},
        )
    assert audit.migrate() == 6
    authz = {**ALLOWED["authz"], "approval_id": "apr-1"}  # type: ignore[dict-item]
    audit.append([from_line(line(request_id="new", authz=authz), "f@1")], "src", Checkpoint("x", 1))
    _, data = audit.query("SELECT row_id, approval_id FROM tollgate_calls ORDER BY row_id")
    assert data == [("new", "apr-1"), ("old", None)]


def test_a_schema_5_store_migrates_to_6_and_rows_name_their_budget(audit: AuditStore) -> None:
    with audit.engine.begin() as c:
        c.execute(text("DROP INDEX ix_tollgate_calls_budget_at"))
        for name in ("budget_id", "budget_day", "budget_cap_micro_usd", "budget_spent_micro_usd"):
            c.execute(text(f"ALTER TABLE tollgate_calls DROP COLUMN {name}"))
        c.execute(text("DELETE FROM tollgate_schema_versions WHERE version = 6"))
    assert audit.migrate() == 6
    authz = {**ALLOWED["authz"], "budget_id": "agents/support", "budget_day": "20261130"}  # type: ignore[dict-item]
    row = line(request_id="b", authz=authz)
    audit.append([from_line(row, "f@1")], "src", Checkpoint("x", 1))
    _cols, data = audit.query("SELECT budget_id, budget_day FROM tollgate_calls WHERE row_id = 'b'")
    assert data == [("agents/support", "20261130")]


def test_rows_and_checkpoint_are_written_together_and_duplicates_ignored(audit: AuditStore) -> None:
    rows = [from_line(line(request_id=f"req-{i}"), f"f@{i}") for i in range(3)]
    assert audit.append(rows, "src", Checkpoint("1:2", 300)) == 3
    audit.append(rows[:2], "src", Checkpoint("1:2", 400))  # a replay after a crash
    assert audit.count() == 3
    assert audit.checkpoint("src") == Checkpoint("1:2", 400)
    _cols, data = audit.query("SELECT row_id, settlement, cost_micro_usd FROM tollgate_calls ORDER BY row_id")
    assert data[0] == ("req-0", "settled", 15_000_000)


def test_rows_are_stored_exactly_as_sqlalchemys_own_insert_stores_them(audit: AuditStore) -> None:
    """append() binds values on the driver itself: each column must hold what conn.execute(insert, dicts)
    would have stored (SQLite keeps datetimes, dates and booleans as its own text and integers)."""
    full = from_line(line(request_id="full", replay=True, start_time="2026-11-25T06:36:48.733Z"), "f@0")
    full = full.model_copy(update={"replay": True, "reason": "50% off 'quoted' %(name)s ?"})
    sparse = from_line(line(authz=None, request_id="sparse", response_code_details="route_not_found"), "f@1")
    audit.append([full, sparse], "src", Checkpoint("x", 1))
    with audit.engine.begin() as conn:
        conn.execute(text("CREATE TABLE expected AS SELECT * FROM tollgate_calls WHERE 1 = 0"))
        table = calls.to_metadata(MetaData(), name="expected")
        conn.execute(table.insert(), [full.model_dump(), sparse.model_dump()])
        got = conn.exec_driver_sql("SELECT * FROM tollgate_calls ORDER BY row_id").fetchall()
        want = conn.exec_driver_sql("SELECT * FROM expected ORDER BY row_id").fetchall()
    assert [tuple(r) for r in got] == [tuple(r) for r in want]
    assert got[0][list(calls.columns.keys()).index("replay")] in (True, 1)  # the full row, a bound boolean


def test_a_sqlite_file_can_be_queried_while_a_writer_holds_its_lock(tmp_path) -> None:
    # A write-ahead log: `tollgate audit sql` and the other audit commands read while the ingester writes
    # (with a rollback journal, a reader waits out the writer's exclusive lock, then fails "database is
    # locked").
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    audit = AuditStore.from_url(url)
    audit.migrate()
    audit.append([from_line(line(request_id="r-1"), "f@1")], "src", Checkpoint("1:2", 10))
    reader = AuditStore.from_url(url, sqlite_lock_wait_s=0.2)
    writer = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute("DELETE FROM tollgate_calls")
        assert reader.query("SELECT row_id FROM tollgate_calls")[1] == [("r-1",)]  # the last commit
        assert reader.query("PRAGMA synchronous")[1] == [(1,)]  # NORMAL: synced at WAL checkpoints
        writer.execute("ROLLBACK")
    finally:
        writer.close()
        reader.dispose()
        audit.dispose()
    assert AuditStore.from_url("sqlite://").migrate() == SCHEMA_VERSION  # in memory: no log to keep


def test_the_finance_query_is_one_sql_statement(audit: AuditStore) -> None:
    rows = [
        from_line(line(request_id="a"), "f@1"),
        from_line(line(request_id="b", response_code=402), "f@2"),  # refused by the vendor: no money moved
        from_line(
            line(
                request_id="c",
                authz={**ALLOWED["authz"], "decision": "deny", "rule": "tollgate_cap_exceeded"},
            ),
            "f@3",
        ),  # type: ignore[dict-item]
    ]
    audit.append(rows, "src", Checkpoint("x", 1))
    _, data = audit.query(
        "SELECT vault_key_id, policy_id, SUM(CASE WHEN decision = 'allow' AND vendor_status BETWEEN 200 AND 299 "
        "THEN cost_micro_usd ELSE 0 END) AS moved, COUNT(*) AS calls FROM tollgate_calls "
        "WHERE day = :day GROUP BY vault_key_id, policy_id",
        {"day": rows[0].day},
    )
    assert data == [("agents/bot", "agents/p", 15_000_000, 3)]


def test_over_long_values_from_agents_do_not_stall_the_audit(audit: AuditStore) -> None:
    authz = {**ALLOWED["authz"], "idempotency_key": "k" * 5000, "amount_minor": "9" * 40}  # type: ignore[dict-item]
    audit.append([from_line(line(request_id="long", authz=authz), "f@1")], "src", Checkpoint("x", 1))
    assert audit.query("SELECT LENGTH(idempotency_key), amount_minor FROM tollgate_calls")[1] == [
        (5000, None)
    ]


def test_a_line_only_json_reads_is_stored_and_a_lone_surrogate_does_not_stall_the_audit(
    audit: AuditStore,
) -> None:
    """Escaped lone surrogates (no database stores one) and NaN: orjson refuses the line, json reads it."""
    text_ = line(request_id="odd", agent_run_id="run-\ud800", duration_ms=float("nan"))
    assert "\\ud800" in text_ and "NaN" in text_
    row = from_line(text_, "f@1")
    assert (row.rule, row.agent_run_id, row.duration_ms) == ("tollgate_allowed", "run-\ufffd", None)
    audit.append([row], "src", Checkpoint("x", 1))
    assert audit.query("SELECT agent_run_id FROM tollgate_calls")[1] == [("run-\ufffd",)]


def test_a_nul_in_a_line_is_stored_as_u_fffd_not_refused_by_the_database(audit: AuditStore) -> None:
    """PostgreSQL refuses NUL in text, and one refused row would hold back every row behind it."""
    escaped = line(request_id="nul", agent_run_id="run-\x00", authz={**ALLOWED["authz"], "reason": "a\x00b"})
    assert "\\u0000" in escaped
    raw = '{"request_id": "raw\x00'  # not JSON: kept as an unreadable line, with its text
    rows = [from_line(escaped, "f@1"), from_line(raw, "f@2")]
    assert rows[0].agent_run_id == "run-\ufffd" and "\x00" not in (rows[1].reason or "")
    audit.append(rows, "src", Checkpoint("x", 2))
    assert audit.count() == 2


def test_a_row_the_database_refuses_is_stored_made_storable_and_holds_nothing_back(
    audit: AuditStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows not read from a line (from_line already cleans what no database stores) can still carry such
    text: the batch goes row by row, the refused row is kept with replacements and a reason, the
    checkpoint moves, and the next batch goes as one again."""
    good = [from_line(line(request_id=f"ok-{i}"), f"f@{i}") for i in range(3)]
    bad = good[0].model_copy(update={"row_id": "bad", "customer": "cus_\ud800", "idempotency_key": "k\x00"})
    audit.append([good[0], bad, good[1]], "src", Checkpoint("x", 3))
    assert audit.checkpoint("src") == Checkpoint("x", 3)
    _cols, data = audit.query(
        "SELECT row_id, customer, idempotency_key, reason FROM tollgate_calls ORDER BY row_id"
    )
    assert [r[0] for r in data] == ["bad", "ok-0", "ok-1"]
    assert data[0][1] == "cus_?" and "refused a value" in data[0][3]
    assert "refused a value of row bad" in caplog.text
    audit.append([good[2]], "src", Checkpoint("x", 4))
    assert audit.count() == 4 and audit.checkpoint("src") == Checkpoint("x", 4)


def test_an_unreachable_store_raises_and_commits_nothing() -> None:
    store = AuditStore.from_url("postgresql://postgres@127.0.0.1:1/none")
    with pytest.raises(AuditStoreUnavailable):
        store.append([from_line(line(), "f@1")], "src", Checkpoint("x", 1))
