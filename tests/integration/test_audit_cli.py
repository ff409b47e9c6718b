"""`tollgate audit` reports over a real SQLite audit store, in each output format."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.unit.audit.test_record import ALLOWED, line
from typer.testing import CliRunner

from tollgate.audit.record import from_line
from tollgate.audit.sql import AuditStore, Checkpoint
from tollgate.cli.main import app
from tollgate.local.processes import ManagedProcess

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = AuditStore.from_url(url)
    store.migrate()
    deny = {**ALLOWED["authz"], "decision": "deny", "rule": "tollgate_cap_exceeded"}  # type: ignore[dict-item]
    other = {
        **ALLOWED["authz"],
        "vault_key_id": "agents/other",
        "policy_id": "agents/q",
        "cost_micro_usd": "2500000",
    }  # type: ignore[dict-item]
    rows = [
        from_line(line(request_id="a"), "f@1"),  # $15 moved
        from_line(line(request_id="b", response_code=402), "f@2"),  # refused by the vendor: nothing moved
        from_line(line(request_id="c", authz=deny, upstream_host=None), "f@3"),
        from_line(line(request_id="d", authz=other), "f@4"),  # $2.50 moved by another agent
    ]
    store.append(rows, "src", Checkpoint("x", 1))
    store.dispose()
    return url


def test_spend_by_key_counts_only_money_the_vendor_accepted(db: str) -> None:
    r = runner.invoke(app, ["audit", "spend", "--db", db, "--by", "key", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == [
        {"key": "agents/bot", "calls": 3, "denied": 1, "spent_usd": "15.00"},
        {"key": "agents/other", "calls": 1, "denied": 0, "spent_usd": "2.50"},
    ]


def test_spend_by_policy_as_csv(db: str) -> None:
    r = runner.invoke(app, ["audit", "spend", "--db", db, "--by", "policy", "--format", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(r.output)))
    assert rows[0] == ["policy", "calls", "denied", "spent_usd"]
    assert rows[1] == ["agents/p", "3", "1", "15.00"]


def test_denials_by_rule_as_a_table(db: str) -> None:
    r = runner.invoke(app, ["audit", "denials", "--db", db])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == ["rule", "denied"]
    assert lines[2].split() == ["tollgate_cap_exceeded", "1"]


def test_a_keys_timeline_lists_its_calls_with_their_decisions(db: str) -> None:
    r = runner.invoke(app, ["audit", "timeline", "agents/bot", "--db", db, "--format", "json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert len(got) == 3
    assert {(x["decision"], x["rule"]) for x in got} == {
        ("allow", "tollgate_allowed"),
        ("deny", "tollgate_cap_exceeded"),
    }


def test_dates_and_groupings_are_validated(db: str) -> None:
    assert runner.invoke(app, ["audit", "spend", "--db", db, "--by", "customer"]).exit_code != 0
    assert runner.invoke(app, ["audit", "spend", "--db", db, "--since", "yesterday"]).exit_code != 0
    r = runner.invoke(app, ["audit", "spend", "--db", db, "--since", "2026-11-26", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.output) == []


def test_spend_prints_round_amounts_as_dollars_and_cents_never_in_exponent_form(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = AuditStore.from_url(url)
    store.migrate()
    big = {**ALLOWED["authz"], "cost_micro_usd": "180000000"}  # type: ignore[dict-item]
    sms = {**ALLOWED["authz"], "vault_key_id": "agents/sms", "cost_micro_usd": "8300"}  # type: ignore[dict-item]
    store.append(
        [
            from_line(line(request_id="a", authz=big), "f@1"),
            from_line(line(request_id="b", authz=sms), "f@2"),
        ],
        "src",
        Checkpoint("x", 1),
    )
    store.dispose()
    r = runner.invoke(app, ["audit", "spend", "--db", url])
    assert r.exit_code == 0, r.output
    table = [row.split() for row in r.output.splitlines()]
    assert table[2] == ["agents/bot", "1", "0", "180.00"]
    assert table[3] == ["agents/sms", "1", "0", "0.0083"]


def test_sql_runs_a_select(db: str) -> None:
    r = runner.invoke(
        app, ["audit", "sql", "SELECT vault_key_id, cost_micro_usd FROM tollgate_calls WHERE row_id IS NOT NULL "
              "ORDER BY cost_micro_usd DESC LIMIT 1", "--db", db, "--format", "json"]
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [{"vault_key_id": "agents/bot", "cost_usd": "15.00"}]


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("DELETE FROM tollgate_calls", id="DELETE"),
        pytest.param("  -- tidy up\n drop table tollgate_calls", id="DROP after a comment"),
        pytest.param("SELECT 1; DELETE FROM tollgate_calls", id="a SELECT with a DELETE behind it"),
        pytest.param("UPDATE tollgate_calls SET cost_micro_usd = 0", id="UPDATE"),
    ],
)
def test_sql_answers_anything_but_a_select_with_one_line(db: str, statement: str) -> None:
    r = runner.invoke(app, ["audit", "sql", statement, "--db", db])
    assert r.exit_code == 2
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert r.output.startswith("error: ") and "SELECT" in r.output
    assert _rows(db) == 4


def test_sql_cannot_write_even_when_the_statement_looks_like_a_query(db: str) -> None:
    """The database is opened read-only: a write hidden in a WITH is refused by SQLite itself."""
    sneaky = "WITH x AS (SELECT 1) DELETE FROM tollgate_calls"
    r = runner.invoke(app, ["audit", "sql", sneaky, "--db", db])
    assert r.exit_code == 1
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert "readonly" in r.output or "read-only" in r.output
    assert _rows(db) == 4


def test_sql_says_so_in_one_line_when_the_database_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    r = runner.invoke(app, ["audit", "sql", "SELECT 1", "--db", f"sqlite:///{missing}"])
    assert r.exit_code == 1
    assert r.output.strip() == f"error: no audit database at {missing}"
    assert not missing.exists()


def test_audit_commands_find_a_local_gateways_database_without_db(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = tmp_path / "project" / "deploy" / "examples" / "local"
    (manifests / ".tollgate").mkdir(parents=True)
    Path(db.removeprefix("sqlite:///")).rename(manifests / ".tollgate" / "audit.db")
    monkeypatch.chdir(tmp_path / "project")
    monkeypatch.delenv("TOLLGATE_AUDIT__URL", raising=False)
    r = runner.invoke(app, ["audit", "spend", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert [x["key"] for x in json.loads(r.stdout)] == ["agents/bot", "agents/other"]
    assert "deploy/examples/local/.tollgate/audit.db" in r.stderr
    r = runner.invoke(app, ["audit", "sql", "SELECT COUNT(*) AS n FROM tollgate_calls", "--format", "json"])
    assert json.loads(r.stdout) == [{"n": 4}]


def test_the_audit_url_in_the_environment_wins_over_a_local_database(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "here" / ".tollgate").mkdir(parents=True)
    (tmp_path / "here" / ".tollgate" / "audit.db").write_bytes(b"")
    monkeypatch.chdir(tmp_path / "here")
    monkeypatch.setenv("TOLLGATE_AUDIT__URL", db)
    r = runner.invoke(app, ["audit", "sql", "SELECT COUNT(*) AS n FROM tollgate_calls", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [{"n": 4}]


def _rows(url: str) -> int:
    store = AuditStore.from_url(url)
    try:
        return store.count()
    finally:
        store.dispose()


@pytest.mark.parametrize(("flag", "lowered_by"), [([], 10), (["--nice", "3"], 3), (["--nice", "0"], 0)])
def test_the_ingester_lowers_its_own_cpu_priority_so_calls_come_first(
    tmp_path: Path, redis_server: ManagedProcess, flag: list[str], lowered_by: int
) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    argv = [sys.executable, "-m", "tollgate.cli.main", "audit", "ingest", "--log", str(log)]
    argv += ["--db", f"sqlite:///{tmp_path / 'audit.db'}", "--redis-url", str(redis_server.url), *flag]
    own = os.getpriority(os.PRIO_PROCESS, 0)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        # Running once its database is migrated: by then the priority is set (it comes first).
        deadline = time.monotonic() + 30
        while not (tmp_path / "audit.db").exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the ingester never opened its database"
            time.sleep(0.05)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(19, own + lowered_by)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
