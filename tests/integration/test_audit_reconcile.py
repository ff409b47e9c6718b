"""`tollgate audit reconcile` over a real audit store (SQLite and PostgreSQL): a crafted mismatch between
what was reserved and what the vendor reported is flagged, so is an unknown outcome; rows that agree
with the vendor are not."""

from __future__ import annotations

import csv
import io
import json

from tests.integration.test_audit_sql import audit_url  # noqa: F401  (SQLite and PostgreSQL)
from tests.unit.audit.test_record import ALLOWED, REFUND_SEEN, line
from typer.testing import CliRunner

from tollgate.audit.record import from_line
from tollgate.audit.sql import AuditStore, Checkpoint
from tollgate.cli.main import app

runner = CliRunner()
DAY = "2026-11-25"  # the day of ALLOWED's start_time


def fill(url: str) -> None:
    store = AuditStore.from_url(url)
    store.migrate()
    other_day = {**ALLOWED, "start_time": "2026-11-26T01:00:00.000Z"}
    store.append(
        [
            from_line(line(request_id="agrees", vendor_response=REFUND_SEEN), "f@1"),
            # crafted: Stripe says it refunded $9, Tollgate reserved $15
            from_line(line(request_id="differs", vendor_response={**REFUND_SEEN, "id": "re_2", "amount": "900"}), "f@2"),
            from_line(line(request_id="unknown", response_code=503), "f@3"),
            from_line(line(request_id="refused", response_code=402), "f@4"),
            from_line(json.dumps({**other_day, "request_id": "tomorrow", "vendor_response": {**REFUND_SEEN, "amount": "1"}}), "f@5"),
        ],
        "src",
        Checkpoint("x", 1),
    )  # fmt: skip
    store.dispose()


def test_reconcile_flags_the_crafted_mismatch_and_the_unknown_outcome_only(audit_url: str) -> None:  # noqa: F811
    fill(audit_url)
    result = runner.invoke(app, ["audit", "reconcile", "--day", DAY, "--db", audit_url, "--format", "json"])
    assert result.exit_code == 1, result.output  # something to look at
    found = json.loads(result.stdout)
    assert [(f["finding"], f["row_id"]) for f in found] == [
        ("amount_differs", "differs"),
        ("settlement_unknown", "unknown"),
    ]
    differs = found[0]
    assert (differs["vendor_object_id"], differs["amount_minor"], differs["vendor_amount_minor"]) == (
        "re_2",
        1500,
        900,
    )
    assert (differs["cost_usd"], differs["settled_usd"]) == ("15.00", "9.00")


def test_reconcile_prints_csv_and_a_table_and_exits_0_on_a_clean_day(audit_url: str) -> None:  # noqa: F811
    fill(audit_url)
    out = runner.invoke(app, ["audit", "reconcile", "--day", DAY, "--db", audit_url, "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["row_id"] for r in rows] == ["differs", "unknown"]
    table = runner.invoke(app, ["audit", "reconcile", "--day", DAY, "--db", audit_url])
    assert table.stdout.splitlines()[0].split()[:3] == ["finding", "at", "vendor"]
    clean = runner.invoke(app, ["audit", "reconcile", "--day", "2026-11-20", "--db", audit_url])
    assert clean.exit_code == 0, clean.output
