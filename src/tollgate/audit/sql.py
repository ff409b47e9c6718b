"""The audit's SQL store on SQLAlchemy Core: SQLite by default, PostgreSQL by URL.

One table, `tollgate_calls`, one row per call; a versioned schema applied by `migrate`; the
ingest checkpoint lives in the same database and is written in the same transaction as the rows it
covers, so a crash or an outage can neither lose a row nor write one twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, SQLAlchemyError

from tollgate.audit.record import AuditRow
from tollgate.errors import TollgateError
from tollgate.record import record
from tollgate.store.base import ApprovalEvent

log = logging.getLogger("tollgate.audit")


class AuditStoreUnavailable(TollgateError):
    """The SQL store could not be reached or refused the write; nothing was committed."""


class _ValueRefused(AuditStoreUnavailable):
    """The database or its driver would not take a value (PostgreSQL refuses NUL in text, no driver
    encodes a lone surrogate): the store is up, a row is at fault."""


metadata = MetaData()

# Schema 4: what was asked and what the vendor did (see AuditRow).
_V4_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("params", Text),
    ("vendor_object_id", Text),
    ("vendor_object", Text),
    ("vendor_amount_minor", BigInteger),
    ("vendor_currency", Text),
    ("vendor_state", Text),
    ("settled_micro_usd", BigInteger),
)

# Schema 6: the shared budget a call was reserved under (see AuditRow).
_V6_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("budget_id", Text),
    ("budget_day", Text),
    ("budget_cap_micro_usd", BigInteger),
    ("budget_spent_micro_usd", BigInteger),
)

# Free-form values are TEXT, never VARCHAR(n): one over-long idempotency key from an agent must not make
# PostgreSQL refuse a whole batch (SQLite never would), which would stall the audit behind it.

calls = Table(
    "tollgate_calls",
    metadata,
    Column("row_id", Text, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("day", Date, nullable=False),
    Column("decision", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("reason", Text),
    Column("shadow_rule", Text),
    Column("replay", Boolean),  # added in schema 2: a retry under an idempotency key already counted
    Column("decision_id", Text),
    Column("request_id", Text),
    Column("vendor", Text),
    Column("method", Text),
    Column("path", Text),
    Column("endpoint", Text),
    Column("vault_key_id", Text),
    Column("policy_id", Text),
    Column("grant_version", Text),
    Column("mode", Text),
    Column("customer", Text),
    Column("connected_account", Text),
    Column("idempotency_key", Text),
    Column("agent_run_id", Text),
    Column("amount_minor", BigInteger),
    Column("currency", Text),
    Column("cost_micro_usd", BigInteger, nullable=False, server_default=text("0")),
    Column("spent_micro_usd", BigInteger),
    Column("cap_micro_usd", BigInteger),
    Column("reservation_id", Text),
    Column("spend_day", Text),
    Column("vendor_status", Integer),
    Column("response_flags", Text),
    Column("duration_ms", Integer),
    Column("bytes_in", BigInteger),
    Column("bytes_out", BigInteger),
    Column("upstream_host", Text),
    # What the outcome proves for an allowed call with a cost: settled (vendor 2xx), released (proven not
    # processed or never sent), unknown (no proof: the cost stays counted). NULL: free calls and denials.
    # Schemas before 3 wrote released for every non-2xx.
    Column("settlement", Text),
    Column("response_code_details", Text),  # added in schema 3: Envoy's word on who answered (via_upstream)
    # Added in schema 4: what was asked (redacted parameters, JSON) and what the vendor says it did.
    *(Column(name, kind) for name, kind in _V4_COLUMNS),
    Column("approval_id", Text),  # added in schema 5: the approval the call waited for or used
    # Added in schema 6: the shared budget (SpendBudget) the call was reserved under, and its day.
    *(Column(name, kind) for name, kind in _V6_COLUMNS),
    Index("ix_tollgate_calls_at", "at"),
    Index("ix_tollgate_calls_key_at", "vault_key_id", "at"),
    Index("ix_tollgate_calls_policy_at", "policy_id", "at"),
    Index("ix_tollgate_calls_vendor_day", "vendor", "day"),
    Index("ix_tollgate_calls_rule_day", "rule", "day"),
    Index("ix_tollgate_calls_vendor_object", "vendor_object_id"),
    Index("ix_tollgate_calls_budget_at", "budget_id", "at"),
)

checkpoints = Table(
    "tollgate_audit_checkpoints",
    metadata,
    Column("source", Text, primary_key=True),
    Column("identity", Text, nullable=False),  # which file (device:inode) the offset is in
    Column("offset", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Added in schema 5: every decision on an approval (spec.approval), copied from Redis's log of them. The
# calls themselves (waiting: a denial; passing: an allowed call) are rows of tollgate_calls with approval_id.
approval_events = Table(
    "tollgate_approval_events",
    metadata,
    Column("event_id", Text, primary_key=True),  # its position in Redis's log
    Column("approval_id", Text, nullable=False),
    Column("vault_key_id", Text, nullable=False),
    Column("policy_id", Text),
    Column("state", Text, nullable=False),  # approved | rejected | expired
    Column("decided_by", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("cost_micro_usd", BigInteger),
    Index("ix_tollgate_approval_events_approval", "approval_id"),
)
APPROVALS_SOURCE = "redis:approvals"  # its checkpoint's name: identity holds the last position copied

schema_versions = Table(
    "tollgate_schema_versions",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


def _v1(conn: Connection) -> None:
    calls.create(conn)
    checkpoints.create(conn)  # later tables are created by the migration that adds them


def _v2(conn: Connection) -> None:
    # `calls` is defined at the newest schema, so a database created by _v1 today already has the column.
    if "replay" not in {c["name"] for c in inspect(conn).get_columns("tollgate_calls")}:
        conn.execute(text("ALTER TABLE tollgate_calls ADD COLUMN replay BOOLEAN"))


def _v3(conn: Connection) -> None:
    # Settlement by evidence: the detail Envoy gave for its status is kept beside the settlement it proved.
    if "response_code_details" not in {c["name"] for c in inspect(conn).get_columns("tollgate_calls")}:
        conn.execute(text("ALTER TABLE tollgate_calls ADD COLUMN response_code_details TEXT"))


def _add_columns(conn: Connection, columns: Sequence[tuple[str, Any]]) -> None:
    """Add the columns tollgate_calls lacks (a migration cut short is run again whole)."""
    have = {c["name"] for c in inspect(conn).get_columns("tollgate_calls")}
    for name, kind in columns:
        if name not in have:
            sql_type = kind().compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE tollgate_calls ADD COLUMN {name} {sql_type}"))


def _v4(conn: Connection) -> None:
    # Rows written before keep NULLs here: nothing was captured for them, and nothing is made up.
    _add_columns(conn, _V4_COLUMNS)
    conn.execute(
        text(
            "CREATE INDEX IF NOT EXISTS ix_tollgate_calls_vendor_object ON tollgate_calls (vendor_object_id)"
        )
    )


def _v5(conn: Connection) -> None:
    # Human approval (spec.approval): which approval a call waited for, or used; and every decision.
    _add_columns(conn, [("approval_id", Text)])
    approval_events.create(conn, checkfirst=True)


def _v6(conn: Connection) -> None:
    # Rows written before name no budget: none existed, so none is made up.
    _add_columns(conn, _V6_COLUMNS)
    conn.execute(
        text("CREATE INDEX IF NOT EXISTS ix_tollgate_calls_budget_at ON tollgate_calls (budget_id, at)")
    )


# Append-only: a released schema version is never edited, a change is a new function.
MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2, _v3, _v4, _v5, _v6]
SCHEMA_VERSION = len(MIGRATIONS)


@record
class LedgerEntry:
    at: datetime
    method: str | None
    path: str | None
    vendor: str | None
    spend_day: str | None
    cost_micro_usd: int
    reservation_id: str | None
    idempotency_key: str | None
    replay: bool | None
    settlement: str | None
    shadow_rule: str | None
    settled_micro_usd: int | None = None  # schema 4: what a settled call counts (the vendor's amount)


@record
class Checkpoint:
    identity: str
    offset: int


class AuditStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Built once: a statement built per write costs the ingester more than the write itself.
        self._inserts: dict[str, Any] = {}
        self._row_insert: _RowInsert | None = None
        self._checkpoint_upsert: Any = None

    @classmethod
    def from_url(cls, url: str, *, sqlite_lock_wait_s: float | None = None) -> AuditStore:
        """`sqlite:///path.db` or `postgresql://…` (psycopg 3 is used for PostgreSQL).
        `sqlite_lock_wait_s`: how long a write waits for another writer's lock before it fails (Python's
        sqlite3 waits 5 s); the ingester waits less, since it retries and settles meanwhile."""
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        # A pooled PostgreSQL connection may have died; a SQLite file's cannot, and pinging it cost a
        # statement per transaction.
        kwargs: dict[str, Any] = {"pool_pre_ping": not url.startswith("sqlite")}
        if url.startswith("postgresql"):
            kwargs["connect_args"] = {"connect_timeout": 3}
        elif url.startswith("sqlite") and sqlite_lock_wait_s is not None:
            kwargs["connect_args"] = {"timeout": sqlite_lock_wait_s}
        engine = create_engine(url, **kwargs)
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            event.listen(engine, "connect", _sqlite_wal)
        return cls(engine)

    def migrate(self) -> int:
        """Apply pending migrations in one transaction; returns the schema version now in place."""
        with self._begin() as conn:
            schema_versions.create(conn, checkfirst=True)
            current = conn.execute(select(func.max(schema_versions.c.version))).scalar() or 0
            for version in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version - 1](conn)
                conn.execute(schema_versions.insert().values(version=version, applied_at=datetime.now(UTC)))
        return SCHEMA_VERSION

    def append(self, rows: Sequence[AuditRow], source: str, checkpoint: Checkpoint) -> int:
        """Insert rows (ignoring any already present) and move the checkpoint, atomically.

        A value the database will not store must not hold back every row behind it, retried forever: the
        rows then go one at a time, and one refused goes with its text made storable and the database's
        complaint in its reason. Rows already in place are ignored if this is cut short and run again."""
        try:
            self._write(rows, (source, checkpoint))
        except _ValueRefused:
            for row in rows:
                try:
                    self._write([row])
                except _ValueRefused as exc:
                    log.error(
                        "the audit store refused a value of row %s (%s); storing it made storable",
                        row.row_id,
                        exc,
                    )
                    self._write([_storable(row, exc)])
            self._write([], (source, checkpoint))
        return len(rows)

    def _write(self, rows: Sequence[AuditRow], checkpoint: tuple[str, Checkpoint] | None = None) -> None:
        with self._begin() as conn:
            if rows:
                if self._row_insert is None:
                    stmt = self._insert_ignoring_duplicates(calls, "row_id")
                    self._row_insert = _RowInsert.compile(stmt, calls, self.engine)
                insert = self._row_insert
                # A row's fields are the table's columns (its model's __dict__ holds them as they are).
                conn.exec_driver_sql(insert.sql, [insert.values(r.__dict__) for r in rows])
            if checkpoint is not None:
                self._save_checkpoint(conn, *checkpoint)

    def append_approval_events(self, events: Sequence[ApprovalEvent]) -> int:
        """Insert decisions (ignoring any already present) and move their checkpoint, atomically."""
        if not events:
            return 0
        values = [
            {
                "event_id": e.event_id,
                "approval_id": e.approval_id,
                "vault_key_id": e.key_id,
                "policy_id": e.policy_id or None,
                "state": e.state,
                "decided_by": e.by or None,
                "at": datetime.fromtimestamp(e.at_ms / 1000, UTC),
                "cost_micro_usd": e.cost_micro_usd,
            }
            for e in events
        ]
        with self._begin() as conn:
            conn.execute(self._insert_ignoring_duplicates(approval_events, "event_id"), values)
            self._save_checkpoint(conn, APPROVALS_SOURCE, Checkpoint(events[-1].event_id, 0))
        return len(values)

    def checkpoint(self, source: str) -> Checkpoint | None:
        with self._connect() as conn:
            row = conn.execute(
                select(checkpoints.c.identity, checkpoints.c.offset).where(checkpoints.c.source == source)
            ).first()
        return Checkpoint(row.identity, row.offset) if row else None

    def query(
        self, sql: str, params: dict[str, Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._connect() as conn:
            result = conn.execute(text(sql), params or {})
            return list(result.keys()), [tuple(r) for r in result]

    def counted_calls(self, key_id: str, since: date) -> list[LedgerEntry]:
        """The key's allowed calls with a cost (or replays of one) from `since` on: what the ledger
        counts, for rebuilding Redis's copy (tollgate.audit.ledger)."""
        c = calls.c
        stmt = (
            select(
                c.at, c.method, c.path, c.vendor, c.spend_day, c.cost_micro_usd, c.reservation_id,
                c.idempotency_key, c.replay, c.settlement, c.shadow_rule, c.settled_micro_usd,
            )
            .where(c.vault_key_id == key_id, c.day >= since, c.decision == "allow")
            .where((c.cost_micro_usd > 0) | (c.replay.is_(True)))
        )  # fmt: skip
        with self._connect() as conn:
            return [LedgerEntry(*row) for row in conn.execute(stmt)]

    def counted_budget_calls(self, budget_id: str, since: date) -> list[tuple[str, LedgerEntry]]:
        """The calls reserved under a shared budget from `since` on, as (vault key id, entry) with the
        entry's spend_day the *budget's* day: what the budget's ledger counts (tollgate.audit.ledger)."""
        c = calls.c
        stmt = (
            select(
                c.vault_key_id, c.at, c.method, c.path, c.vendor, c.budget_day, c.cost_micro_usd,
                c.reservation_id, c.idempotency_key, c.replay, c.settlement, c.shadow_rule,
                c.settled_micro_usd,
            )
            .where(c.budget_id == budget_id, c.day >= since, c.decision == "allow")
            .where((c.cost_micro_usd > 0) | (c.replay.is_(True)))
        )  # fmt: skip
        with self._connect() as conn:
            return [(row[0] or "", LedgerEntry(*list(row)[1:])) for row in conn.execute(stmt)]

    def count(self) -> int:
        with self._connect() as conn:
            return int(conn.execute(select(func.count()).select_from(calls)).scalar() or 0)

    def _insert_ignoring_duplicates(self, table: Table, key: str) -> Any:
        stmt = self._inserts.get(table.name)
        if stmt is None:
            stmt = self._dialect().insert(table).on_conflict_do_nothing(index_elements=[key])
            self._inserts[table.name] = stmt
        return stmt

    def _dialect(self) -> Any:
        if self.engine.dialect.name == "postgresql":
            return postgresql
        if self.engine.dialect.name == "sqlite":
            return sqlite
        raise AuditStoreUnavailable(f"unsupported database {self.engine.dialect.name}")

    def _save_checkpoint(self, conn: Connection, source: str, cp: Checkpoint) -> None:
        if self._checkpoint_upsert is None:  # insert or move the source's row; values bound per call
            stmt = self._dialect().insert(checkpoints)
            self._checkpoint_upsert = stmt.on_conflict_do_update(
                index_elements=["source"],
                set_={
                    "identity": stmt.excluded.identity,
                    "offset": stmt.excluded.offset,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        values = {
            "source": source,
            "identity": cp.identity,
            "offset": cp.offset,
            "updated_at": datetime.now(UTC),
        }
        conn.execute(self._checkpoint_upsert, values)

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except (DataError, UnicodeError) as exc:  # a value, not the store (sqlite3 raises the latter bare)
            cause = getattr(exc, "orig", None) or exc
            first = str(cause).splitlines()[0] if str(cause) else ""
            raise _ValueRefused(f"audit store: {type(cause).__name__}: {first[:200]}") from exc
        except SQLAlchemyError as exc:
            raise AuditStoreUnavailable(f"audit store: {type(exc).__name__}: {exc}") from exc

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise AuditStoreUnavailable(f"audit store: {type(exc).__name__}: {exc}") from exc

    def dispose(self) -> None:
        self.engine.dispose()


class _RowInsert:
    """An INSERT compiled once for the database, executed on the driver with each row's values put through
    the columns' own bind processors (SQLAlchemy's: a datetime as SQLite's text, say) in the statement's
    order. The same statement and stored values as `conn.execute(stmt, dicts)`, without SQLAlchemy's
    per-row parameter machinery, which cost the ingester more than SQLite's own insert."""

    def __init__(
        self, sql: str, names: Sequence[str], processors: dict[str, Callable[[Any], Any]], positional: bool
    ):
        self.sql = sql
        self._names = tuple(names)
        self._processors = processors
        self._positional = positional

    @classmethod
    def compile(cls, stmt: Any, table: Table, engine: Engine) -> _RowInsert:
        dialect = engine.dialect
        names = [c.name for c in table.columns]
        compiled = stmt.compile(dialect=dialect, column_keys=names)
        order = list(compiled.positiontup) if compiled.positional else names
        if sorted(order) != sorted(names):  # every column bound once, under its own name
            raise RuntimeError(f"unexpected parameters for {table.name}: {order}")
        processors: dict[str, Callable[[Any], Any]] = {}
        for column in table.columns:
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[column.name] = process
        return cls(compiled.string, order, processors, compiled.positional)

    def values(self, fields: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        processors = self._processors
        out = tuple(
            processors[name](fields[name]) if name in processors else fields[name] for name in self._names
        )
        return out if self._positional else dict(zip(self._names, out, strict=True))


def _storable(row: AuditRow, exc: Exception) -> AuditRow:
    """The row with every text made of what any database stores (no NUL, no lone surrogate), and why."""

    def plain(text: str) -> str:
        return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")

    fields = {k: plain(v) if isinstance(v, str) else v for k, v in row.__dict__.items()}
    note = f"the audit store refused a value ({exc}); its text is stored with replacements"
    fields["reason"] = plain(f"{row.reason}; {note}" if row.reason else note)
    return AuditRow(**fields)


def _sqlite_wal(dbapi_conn: Any, _record: Any) -> None:
    """Write-ahead log, synced at its checkpoints rather than at each commit: a commit stops costing the
    ingester a journal file and two fsyncs (about 0.5 ms of CPU each), and readers (`tollgate audit sql`
    and the other audit commands) no longer wait for the writer. A crash of the process loses nothing;
    a power loss can roll the last commits back, rows and checkpoint together, and those lines are read
    from the access log again (which Envoy does not sync either)."""
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def day_range(since: date | None, until: date | None) -> tuple[str, dict[str, Any]]:
    """A WHERE fragment on `day` for report queries."""
    clauses, params = [], {}
    if since:
        clauses.append("day >= :since")
        params["since"] = since
    if until:
        clauses.append("day <= :until")
        params["until"] = until
    return (" AND ".join(clauses) or "1=1"), params
