"""The picker page in a real Chromium: what a person sees after ticking use cases equals what
`tollgate picker … --output json` prints, for every single use case, every pair and more."""

from __future__ import annotations

import itertools
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from tollgate.cli.main import app
from tollgate.vendors.stripe import picker
from tollgate.web import picker_page

NAMES = list(picker.load_catalog().use_cases)
READ_PAGE = """() => {
  const all = (s) => [...document.querySelectorAll(s)];
  const text = (id) => document.getElementById(id).textContent;
  return {
    empty: !document.getElementById("empty").hidden,
    permissions: all("#permissions tbody tr").map((tr) => ({
      row: tr.querySelector(".dashboard").textContent, level: tr.querySelector(".level").textContent,
      permission: tr.querySelector(".permission code").textContent,
      weight: Number(tr.querySelector(".weight").textContent), irreversible: !!tr.querySelector(".irreversible"),
    })),
    score: Number(text("score")), band: text("band"),
    parts: all("#parts tbody tr").map((tr) => [tr.dataset.part, Number(tr.cells[1].textContent)]),
    warnings: document.getElementById("warnings-box").hidden ? [] : all("#warnings li").map((li) => li.textContent),
    conflicts: document.getElementById("conflicts-box").hidden ? [] : all("#conflicts li").map((li) => li.textContent),
    policy: text("policy-yaml"), cli: text("stripe-cli").split("\\n"),
  };
}"""


def cli_pick(names: list[str]) -> dict[str, Any]:
    r = CliRunner().invoke(app, ["picker", "pick", *names, "--output", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def as_shown(cli: dict[str, Any]) -> dict[str, Any]:
    """The CLI's answer in the shape the page shows it."""
    br = cli["blast_radius"]
    return {
        "permissions": [
            {
                "row": p["dashboard"].split(": ")[0],
                "level": p["dashboard"].split(": ")[1],
                "permission": p["permission"],
                "weight": p["weight"],
                "irreversible": p["irreversible"],
            }
            for p in cli["permissions"]
        ],
        "score": br["score"],
        "band": br["band"],
        "parts": [list(kv) for kv in br["parts"].items()],
        "warnings": [f"{' + '.join(w['permissions'])}: {w['why']}" for w in br["warnings"]],
        "conflicts": cli["rule_conflicts"],
        "policy": cli["policy"],
        "cli": cli["stripe_cli"],
    }


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("picker") / "picker.html"
    r = CliRunner().invoke(app, ["picker", "web", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


class Ticks:
    """Ticks and unticks checkboxes the way a person does, then reads what the page shows."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.ticked: set[str] = set()

    def choose(self, names: set[str]) -> dict[str, Any]:
        for name in NAMES:  # force: a real click, without waiting for animations the page does not have
            if (name in names) != (name in self.ticked):
                self.page.set_checked(f'#use-case-list input[value="{name}"]', name in names, force=True)
        self.ticked = set(names)
        shown: dict[str, Any] = self.page.evaluate(READ_PAGE)
        text = shown["policy"]
        assert text.startswith("---\n")
        shown["policy"] = yaml.safe_load(text)
        return shown


def combinations() -> list[list[str]]:
    rng = random.Random(18)
    larger = [
        sorted(rng.sample(NAMES, k), key=NAMES.index) for k in (3, 3, 3, 4, 4, 5, 6, 8) for _ in range(3)
    ]
    return [[n] for n in NAMES] + [list(p) for p in itertools.combinations(NAMES, 2)] + larger + [NAMES]


def test_every_use_case_and_every_pair_show_exactly_what_the_cli_prints(
    page_file: Path, watched: Any
) -> None:
    watched.page.goto(page_file.as_uri())
    ticks = Ticks(watched.page)
    combos = combinations()
    assert len(combos) == len(NAMES) + len(NAMES) * (len(NAMES) - 1) // 2 + 24 + 1
    bands, warned, conflicted = set(), 0, 0
    for names in combos:
        shown = ticks.choose(set(names))
        shown.pop("empty")
        assert shown == as_shown(cli_pick(names)), names
        bands.add(shown["band"])
        warned += bool(shown["warnings"])
        conflicted += bool(shown["conflicts"])
    assert bands == {"low", "medium", "high"} and warned and conflicted  # every part of the page was compared
    assert watched.errors == []


def test_the_page_loads_nothing_but_itself_and_starts_empty(page_file: Path, watched: Any) -> None:
    watched.page.goto(page_file.as_uri())
    assert watched.page.is_visible("#empty") and not watched.page.is_visible("#permissions")
    ticks = Ticks(watched.page)
    ticks.choose({"support-refunds"})
    assert watched.page.is_visible("#permissions")
    assert ticks.choose(set())["empty"] and not watched.page.is_visible("#permissions")
    assert watched.requests == [page_file.as_uri()]
    assert watched.errors == []


def test_a_dangerous_pair_appears_when_its_second_half_is_ticked(
    page_file: Path, watched: Any, screenshot: Any
) -> None:
    watched.page.goto(page_file.as_uri())
    ticks = Ticks(watched.page)
    alone = ticks.choose({"support-refunds"})
    assert alone["warnings"] == [] and not watched.page.is_visible("#warnings")
    both = ticks.choose({"support-refunds", "billing-collections"})
    assert watched.page.is_visible("#warnings")
    assert [w.split(":")[0] for w in both["warnings"]] == ["payment_intent_write + refund_write"]
    assert both["score"] > alone["score"] and (both["score"], both["band"]) == (37, "high")
    assert watched.page.get_attribute("#band", "class") == "band high"
    screenshot(watched.page, "picker.png")
    watched.page.set_viewport_size(
        {"width": 1000, "height": 800}
    )  # long lines scroll in their box, not the page
    assert watched.page.evaluate("document.documentElement.scrollWidth <= innerWidth")


def test_the_copy_button_copies_the_yaml_that_is_shown(page_file: Path, browser: Any) -> None:
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        page.check('#use-case-list input[value="dispute-handler"]')
        page.click("#copy")
        page.wait_for_function("document.getElementById('copied').textContent !== ''")
        shown = page.text_content("#policy-yaml")
        if page.text_content("#copied") == "copied":
            assert page.evaluate("navigator.clipboard.readText()") == shown
        else:  # no clipboard: the YAML is selected for Ctrl-C instead
            assert page.evaluate("getSelection().toString()") == shown
        assert yaml.safe_load(shown or "")["metadata"]["name"] == "dispute-handler"
    finally:
        context.close()


def test_picker_web_serve_serves_the_same_page_on_localhost_only(tmp_path: Path, watched: Any) -> None:
    out = tmp_path / "picker.html"
    tollgate = Path(sys.executable).parent / "tollgate"
    cmd = [str(tollgate), "picker", "web", "--out", str(out), "--serve", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        match = re.search(r"serving (http://127\.0\.0\.1:\d+/)", lines[1])
        assert match, lines
        url = match.group(1)
        assert httpx.get(url).text == out.read_text(encoding="utf-8") == picker_page.render()
        assert httpx.get(url + "other").status_code == 404
        watched.page.goto(url)
        shown = Ticks(watched.page).choose({"readonly-analytics"})
        assert shown["band"] == "low" and shown["warnings"] == []
        assert watched.requests == [url]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
