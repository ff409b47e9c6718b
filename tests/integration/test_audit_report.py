"""`tollgate audit report`: the page is built from the same queries as `tollgate audit spend` and
`tollgate audit denials`, so for one day it shows the numbers they print."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.integration.test_audit_sql import postgres_database
from tests.support.audit_day import BOT_A, DAY, fill
from typer.testing import CliRunner

from tollgate.audit.report import build
from tollgate.audit.sql import AuditStore
from tollgate.cli.main import app

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    fill(url).dispose()
    return url


@pytest.fixture
def pg_db() -> Iterator[str]:
    for url in postgres_database():  # skipped where no PostgreSQL runs (never in CI)
        fill(url).dispose()
        yield url


def test_postgresql_and_sqlite_give_the_same_report(db: str, pg_db: str) -> None:
    on_sqlite, on_postgresql = (build(AuditStore.from_url(u), DAY).model_dump() for u in (db, pg_db))
    on_sqlite.pop("generated_at"), on_postgresql.pop("generated_at")
    assert on_postgresql == on_sqlite
    assert on_sqlite["spent_micro_usd"] == 1_461_560_000 and len(on_sqlite["stopped"]) == 3


def cli(*args: str) -> Any:
    r = runner.invoke(app, ["audit", *args])
    assert r.exit_code == 0, r.output
    return r.output if "report" in args else json.loads(r.output)


def test_report_numbers_equal_audit_spend_and_denials_for_that_day(db: str) -> None:
    day = ["--since", DAY.isoformat(), "--until", DAY.isoformat(), "--db", db, "--format", "json"]
    r = build(AuditStore.from_url(db), DAY)
    by_key = cli("spend", "--by", "key", *day)
    assert [(k["key"], k["calls"], k["denied"], Decimal(k["spent_usd"]) * 1_000_000) for k in by_key] == [
        (k.key, k.calls, k.denied, k.spent_micro_usd) for k in r.by_key
    ]
    by_policy = cli("spend", "--by", "policy", *day)
    assert [(p["policy"], p["calls"]) for p in by_policy] == [(p.policy, p.calls) for p in r.by_policy]
    assert [(d["rule"], d["denied"]) for d in cli("denials", "--by", "rule", *day)] == [
        (d.rule, d.denied) for d in r.denials
    ]


def test_report_writes_the_page_for_the_day_asked(db: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert "wrote" in cli("report", "--day", DAY.isoformat(), "--db", db, "--out", str(out))
    page = out.read_text(encoding="utf-8")
    assert f"Spend on {DAY.isoformat()}" in page and f'data-key="{BOT_A}"' in page
    assert "<script" not in page and "default-src 'none'" in page


def test_report_refuses_a_day_that_is_not_a_date(db: str) -> None:
    r = runner.invoke(app, ["audit", "report", "--day", "yesterday-ish", "--db", db])
    assert r.exit_code == 2 and "YYYY-MM-DD" in r.output


def test_report_defaults_to_yesterday(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli("report", "--db", db)
    (written,) = tmp_path.glob("tollgate-report-*.html")
    assert date.fromisoformat(written.stem.removeprefix("tollgate-report-")) < date.today()
