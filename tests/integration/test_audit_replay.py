"""The audit's `replay` column: schema 2 adds it to a schema-1 database, and a replayed call's row
carries it (SQLite here; the column is plain SQL and test_audit_sql covers both databases)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from tollgate.audit.record import from_entry
from tollgate.audit.sql import SCHEMA_VERSION, AuditStore, Checkpoint

ENTRY = {
    "start_time": "2026-11-25T12:00:00.000Z",
    "request_id": "req_replay",
    "method": "POST",
    "response_code": 200,
    "upstream_host": "127.0.0.1:1",
    "authz": {
        "decision": "allow",
        "rule": "tollgate_allowed",
        "idempotency_key": "ik_1",
        "replay": True,
        "cost_micro_usd": "0",
    },
}


def test_a_schema_1_database_gains_the_replay_and_evidence_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = AuditStore.from_url(url)
    store.migrate()
    with store.engine.begin() as conn:  # turn it back into what schema 1 created
        conn.execute(text("ALTER TABLE tollgate_calls DROP COLUMN replay"))
        conn.execute(text("ALTER TABLE tollgate_calls DROP COLUMN response_code_details"))
        conn.execute(text("DELETE FROM tollgate_schema_versions WHERE version > 1"))
    assert store.migrate() == SCHEMA_VERSION == 6
    store.append([from_entry(ENTRY, "t")], "src", Checkpoint("f", 1))
    _, rows = store.query("SELECT replay, cost_micro_usd, response_code_details FROM tollgate_calls")
    assert rows == [(True, 0, ENTRY.get("response_code_details"))]
    _, versions = store.query("SELECT version FROM tollgate_schema_versions ORDER BY version")
    assert versions == [(1,), (2,), (3,), (4,), (5,), (6,)]
    store.dispose()


def test_only_a_replay_is_marked() -> None:
    assert from_entry(ENTRY, "t").replay is True
    plain = {**ENTRY, "authz": {**ENTRY["authz"], "replay": None}}  # type: ignore[dict-item]
    assert from_entry(plain, "t").replay is None


def test_a_shadow_rows_reason_is_what_enforcement_would_have_said() -> None:
    authz = {
        "decision": "allow",
        "rule": "tollgate_allowed",
        "shadow_rule": "tollgate_loop_breaker",
        "shadow_reason": "Loop breaker: ...",
    }
    row = from_entry({**ENTRY, "authz": authz}, "t")
    assert (row.decision, row.shadow_rule, row.reason) == (
        "allow",
        "tollgate_loop_breaker",
        "Loop breaker: ...",
    )
