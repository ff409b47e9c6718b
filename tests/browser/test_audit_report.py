"""The daily spend report in a real Chromium: every number a person reads on it, checked against the rows in
the audit database (summed here in plain Python, not by the report's queries)."""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from tests.support.audit_day import BOT_A, BOT_B, COLLECTOR, DAY, REFUNDS, TRIAL_BOT, fill
from typer.testing import CliRunner

from tollgate.cli.main import app

READ_REPORT = """() => {
  const all = (s, root = document) => [...root.querySelectorAll(s)];
  const money = (td) => Number(td.dataset.microUsd);
  const card = (id) => Number(document.getElementById(id).dataset.value);
  return {
    totals: { spent: card("total-spent"), unknown: card("total-unknown"), calls: card("total-calls"),
              denied: card("total-denied") },
    spentText: document.querySelector("#total-spent .big").textContent,
    keys: all("table.keys tbody tr").map((tr) => {
      const m = all("td[data-micro-usd]", tr).map(money);
      return { key: tr.dataset.key, spent: m[0], cap: m.length === 3 ? m[1] : null, unknown: m[m.length - 1],
               calls: Number(tr.querySelector(".calls").textContent), denied: Number(tr.querySelector(".denied").textContent),
               policy: tr.closest("div.policy").dataset.policy };
    }),
    series: all("g.series").map((g) => {
      const pts = g.querySelector("polyline").getAttribute("points").split(" ").map((p) => p.split(",").map(Number));
      const caps = all("line.cap", g.closest("svg")).map((l) => [Number(l.dataset.capMicroUsd), Number(l.getAttribute("y1"))]);
      return { key: g.dataset.key, spent: Number(g.dataset.spentMicroUsd), lastY: pts[pts.length - 1][1],
               firstY: pts[0][1], caps };
    }),
    denials: all("#denials tbody tr").map((tr) => [tr.dataset.rule, Number(tr.cells[1].textContent)]),
    stopped: all("#stopped tbody tr").map((tr) => [tr.dataset.key, tr.dataset.rule, Number(tr.cells[3].textContent),
                                                  tr.cells[2].textContent.includes("shadow")]),
    reached: all("#reached-cap tbody tr").map((tr) => [tr.dataset.key, tr.cells[3].textContent]),
    top: all("#top-calls tbody tr").map((tr) => money(tr.querySelector("td[data-micro-usd]"))),
    unknown: all("#unknown tbody tr").map((tr) => [tr.cells[1].textContent, money(tr.querySelector("td[data-micro-usd]")),
                                                  tr.cells[6].textContent]),
  };
}"""


def moved(r: dict[str, Any]) -> bool:
    return r["decision"] == "allow" and r["vendor_status"] is not None and 200 <= r["vendor_status"] <= 299


@pytest.fixture(scope="module")
def audit_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "audit.db"
    fill(f"sqlite:///{path}").dispose()
    return path


def day_rows(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return [
            dict(r) for r in conn.execute("SELECT * FROM tollgate_calls WHERE day = ?", (DAY.isoformat(),))
        ]


def report(audit_db: Path, day: str, out: Path) -> Path:
    r = CliRunner().invoke(
        app, ["audit", "report", "--day", day, "--db", f"sqlite:///{audit_db}", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    return out


def test_the_report_shows_the_days_numbers_as_the_database_has_them(
    audit_db: Path, tmp_path: Path, watched: Any, screenshot: Any
) -> None:
    page_file = report(audit_db, DAY.isoformat(), tmp_path / "report.html")
    watched.page.goto(page_file.as_uri())
    shown = watched.page.evaluate(READ_REPORT)
    rows = day_rows(audit_db)

    spent: dict[str | None, int] = defaultdict(int)
    for r in rows:
        if moved(r):
            spent[r["vault_key_id"]] += r["cost_micro_usd"]
    open_outcome = [r for r in rows if r["settlement"] not in (None, "settled", "released")]
    assert shown["totals"] == {
        "spent": sum(spent.values()),
        "unknown": sum(r["cost_micro_usd"] for r in open_outcome),
        "calls": len(rows),
        "denied": sum(r["decision"] == "deny" for r in rows),
    }
    assert (
        shown["spentText"] == "$1,461.56"
    )  # $200 + $20 + $1,234.56 + $7, and nothing from the days either side

    keys = {k["key"]: k for k in shown["keys"]}
    assert set(keys) == {r["vault_key_id"] or "" for r in rows}
    for key, k in keys.items():
        mine = [r for r in rows if (r["vault_key_id"] or "") == key]
        assert k["spent"] == spent[key or None], key
        assert k["calls"] == len(mine) and k["denied"] == sum(r["decision"] == "deny" for r in mine), key
        caps = [r["cap_micro_usd"] for r in mine if r["cap_micro_usd"] is not None]
        assert k["cap"] == (caps[-1] if caps else None), key
        assert k["unknown"] == sum(r["cost_micro_usd"] for r in open_outcome if r["vault_key_id"] == key), key
    assert keys[BOT_A]["policy"] == keys[BOT_B]["policy"] == REFUNDS

    lines = {s["key"]: s for s in shown["series"]}
    assert set(lines) == {BOT_A, BOT_B, COLLECTOR, TRIAL_BOT}  # keys that moved money draw a line
    for key, s in lines.items():
        assert s["spent"] == spent[key]
    ((cap, cap_y),) = lines[BOT_A]["caps"]
    assert cap == keys[BOT_A]["cap"] == spent[BOT_A]
    assert lines[BOT_A]["lastY"] == pytest.approx(cap_y, abs=0.01)  # the key's line ends on its cap line
    assert lines[BOT_B]["firstY"] > lines[BOT_B]["lastY"] > cap_y  # above zero, below the cap (y grows down)
    ((trial_cap, trial_cap_y),) = lines[TRIAL_BOT]["caps"]
    assert (
        spent[TRIAL_BOT] > trial_cap and lines[TRIAL_BOT]["lastY"] < trial_cap_y
    )  # the shadow policy's overshoot

    denials = Counter(r["rule"] for r in rows if r["decision"] == "deny")
    assert dict(shown["denials"]) == denials and len(shown["denials"]) == len(denials)
    assert sorted(shown["stopped"]) == sorted(
        [
            [BOT_A, "tollgate_cap_exceeded", 2, False],
            [BOT_B, "tollgate_loop_breaker", 3, False],
            [TRIAL_BOT, "tollgate_cap_exceeded", 1, True],
        ]
    )
    # Money moved brought bot-a to its $200 cap at 13:00, and the shadow key past its $5 at 09:45.
    assert shown["reached"] == [[TRIAL_BOT, "09:45:00"], [BOT_A, "13:00:00"]]
    costs = sorted(
        (r["cost_micro_usd"] for r in rows if r["decision"] == "allow" and r["cost_micro_usd"] > 0),
        reverse=True,
    )
    assert shown["top"] == costs[:10]
    assert (
        sorted(shown["unknown"])
        == sorted([[r["vault_key_id"], r["cost_micro_usd"], r["settlement"]] for r in open_outcome])
        and len(open_outcome) == 2
    )

    assert watched.requests == [page_file.as_uri()]  # nothing loaded from anywhere
    assert watched.errors == []
    screenshot(watched.page, "report.png")


def test_a_day_without_calls_says_so(audit_db: Path, tmp_path: Path, watched: Any) -> None:
    page_file = report(audit_db, "2026-11-01", tmp_path / "empty.html")
    watched.page.goto(page_file.as_uri())
    assert watched.page.text_content("#spend-by-policy-empty") == "No calls on this day."
    assert watched.page.text_content("#total-spent .big") == "$0.00"
    assert watched.page.locator("svg").count() == 0
    assert watched.errors == []
