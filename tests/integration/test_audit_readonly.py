"""`tollgate audit sql` reads through a connection the database itself keeps read-only, on SQLite and
PostgreSQL: a write that slips past the statement check is still refused."""

from __future__ import annotations

import re

import pytest
from tests.integration.test_audit_sql import audit, audit_url  # noqa: F401  (fixtures: both databases)
from tests.unit.audit.test_record import line

from tollgate.audit.readonly import NotAQuery, QueryFailed, check_query, read_only_query
from tollgate.audit.record import from_line
from tollgate.audit.sql import AuditStore, Checkpoint


@pytest.fixture
def one_row(audit: AuditStore, audit_url: str) -> str:  # noqa: F811
    audit.append([from_line(line(request_id="a"), "f@1")], "src", Checkpoint("x", 1))
    return audit_url


def test_a_select_returns_its_columns_and_rows(one_row: str) -> None:
    assert read_only_query(one_row, "SELECT COUNT(*) AS n FROM tollgate_calls") == (["n"], [(1,)])


# A write the statement check lets through → the databases on which it is valid SQL (elsewhere it is a
# syntax error, refused all the same).
WRITES = {
    "WITH x AS (SELECT 1) DELETE FROM tollgate_calls": {"sqlite", "postgresql"},
    "WITH gone AS (DELETE FROM tollgate_calls RETURNING 1) SELECT COUNT(*) FROM gone": {"postgresql"},
    "SELECT * FROM tollgate_calls FOR UPDATE": {"postgresql"},
}


@pytest.mark.parametrize("sql", list(WRITES))
def test_the_database_refuses_a_write_the_check_lets_through(one_row: str, sql: str) -> None:
    check_query(sql)  # looks like a query to the front door
    dialect = "sqlite" if one_row.startswith("sqlite") else "postgresql"
    with pytest.raises(QueryFailed) as refused:
        read_only_query(one_row, sql)
    assert "\n" not in str(refused.value)
    if dialect in WRITES[sql]:  # valid SQL here: refused because the connection is read-only
        assert re.search(r"read-?only", str(refused.value)), refused.value
    assert read_only_query(one_row, "SELECT COUNT(*) FROM tollgate_calls")[1] == [(1,)]


@pytest.mark.parametrize(
    ("sql", "ok"),
    [
        ("select 1", True),
        ("  /* report */ WITH a AS (SELECT 1) SELECT * FROM a;", True),
        ("SELECT ';' AS semicolon, 'x -- not a comment' AS dashes", True),
        ("INSERT INTO tollgate_calls DEFAULT VALUES", False),
        ("SELECT 1; SELECT 2", False),
        ("PRAGMA writable_schema = 1", False),
        ("ATTACH DATABASE 'x.db' AS x", False),
        ("", False),
    ],
)
def test_only_one_select_passes_the_statement_check(sql: str, ok: bool) -> None:
    if ok:
        check_query(sql)
    else:
        with pytest.raises(NotAQuery):
            check_query(sql)
