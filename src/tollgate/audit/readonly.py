"""Read-only queries over the audit store, for `tollgate audit sql`.

Read-only by construction, not by inspecting the statement alone: SQLite is opened `mode=ro` with
`PRAGMA query_only`, PostgreSQL sessions start with `default_transaction_read_only`, so the database
itself refuses a write however it is spelled (`WITH d AS (DELETE …) SELECT …` included). The statement
check in front only turns the common mistake into one plain line instead of a driver error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tollgate.errors import TollgateError

QUERY_WORDS = ("select", "with")
# Literals, quoted names and comments, removed before looking at the statement's words and semicolons.
_NOT_CODE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)


class NotAQuery(TollgateError):
    """The statement is not one SELECT (or WITH … SELECT)."""


class QueryFailed(TollgateError):
    """The database refused or could not run the query; the message is one line."""


def check_query(sql: str) -> None:
    """Raise NotAQuery unless `sql` is a single SELECT / WITH statement."""
    code = _NOT_CODE.sub(" ", sql).strip().rstrip(";").strip()
    word = code.split(None, 1)[0].lower() if code else ""
    if word not in QUERY_WORDS:
        raise NotAQuery(f"only a SELECT is run here (got {word.upper() or 'nothing'})")
    if ";" in code:
        raise NotAQuery("only one statement is run here")


def read_only_engine(url: str) -> Engine:
    """An engine over the audit store that cannot write: `sqlite:///file.db` or `postgresql://…`."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not parsed.database or not path.is_file():
            raise QueryFailed(f"no audit database at {path or url}")
        engine = create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
        event.listen(engine, "connect", _sqlite_query_only)
        return engine
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
        options = "-c default_transaction_read_only=on"
        return create_engine(parsed, connect_args={"connect_timeout": 3, "options": options})
    raise QueryFailed(f"unsupported database URL {parsed.render_as_string(hide_password=True)}")


def read_only_query(url: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Columns and rows of one SELECT, on a connection that cannot write."""
    check_query(sql)
    engine = read_only_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.exec_driver_sql(sql)
            return list(result.keys()), [tuple(r) for r in result]
    except SQLAlchemyError as exc:
        raise QueryFailed(_first_line(exc)) from exc
    finally:
        engine.dispose()


def _sqlite_query_only(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA query_only = ON")


def _first_line(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]
