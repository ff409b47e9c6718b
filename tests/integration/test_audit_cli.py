"""`tollgate audit` reports over a real SQLite audit store, in each output format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from tests.unit.audit.test_record import ALLOWED, line
from typer.testing import CliRunner

from tollgate.audit.record import from_line
from tollgate.audit.sql import AuditStore, Checkpoint
from tollgate.cli.main import app

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
        {"key": "agents/bot", "calls": 3, "denied": 1, "spent_usd": "15"},
        {"key": "agents/other", "calls": 1, "denied": 0, "spent_usd": "2.5"},
    ]


def test_spend_by_policy_as_csv(db: str) -> None:
    r = runner.invoke(app, ["audit", "spend", "--db", db, "--by", "policy", "--format", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(r.output)))
    assert rows[0] == ["policy", "calls", "denied", "spent_usd"]
    assert rows[1] == ["agents/p", "3", "1", "15"]


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
