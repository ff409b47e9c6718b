"""A real headless Chromium (Debian's `chromium` package) driven by Playwright for Python.

Playwright never downloads a browser here: it launches the system one. Without a browser (or without
Playwright) these tests skip and say how to get one; under CI they fail instead, since CI installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from tests.support.ci import unavailable

ROOT = Path(__file__).resolve().parents[2]
# Screenshots and pages the tests looked at, kept after the run (gitignored).
ARTIFACTS = Path(os.environ.get("TOLLGATE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: pages opened in a real headless Chromium")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


def _chromium() -> str | None:
    return os.environ.get("TOLLGATE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _unavailable(why: str) -> NoReturn:
    unavailable(f"{why}: install Debian's browser with `apt-get install chromium` (CI does, in .ci/run)")


# Module scope, not session: while Playwright's sync API is started, its event loop counts as running in
# this thread, and every later asyncio.run() (the other tiers' async tests) would refuse to start.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        _unavailable("no Chromium on this machine")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page that records every request it makes and every script error it hits."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield Watched(context.new_page())
    finally:
        context.close()


@pytest.fixture
def screenshot() -> Any:
    """`screenshot(page, "name.png")` saves a full-page PNG under test-artifacts/browser/."""

    def save(page: Any, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
