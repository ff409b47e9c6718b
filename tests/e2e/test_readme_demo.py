"""The README's local-mode examples, run as written against `tollgate local --localstripe` and its demo
data: every call in them either passes or raises exactly the error and rule its comment says, and the
folder edit the README describes takes effect. A README that drifts from the gateway fails here."""

from __future__ import annotations

import ast
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import stripe
from tests.e2e.test_local_mode import EXAMPLE, ROOT, start_local, stop_local, token_in

from tollgate.local.processes import free_port

DEMO_SECTION = "### Refunds, the cap and a full refund on localstripe's demo data"
RAISES = re.compile(r"#\s*raises stripe\.(\w+) \((\w+)\)")
AMOUNT_RULE = """    - field: amount
      op: lte
      value: 10000
      endpoints: ["POST /v1/refunds"]
"""


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def readme_examples() -> tuple[str, list[str]]:
    """The first example of the README, and those of its demo-data section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(DEMO_SECTION, 1)[1].split("\n## ", 1)[0]
    return python_blocks(readme)[0], python_blocks(section)


def run_as_written(code: str, token: str, port: int, scope: dict[str, Any]) -> int:
    """Run each statement; one followed by `# raises stripe.X (rule)` must raise exactly that.
    Returns how many statements made a call through the gateway."""
    code = code.replace('"tgk_…"', repr(token)).replace("http://127.0.0.1:10000", f"http://127.0.0.1:{port}")
    lines = code.splitlines()
    calls = 0
    for stmt in ast.parse(code).body:
        source = ast.get_source_segment(code, stmt)
        assert source is not None
        after = lines[stmt.end_lineno] if stmt.end_lineno is not None and stmt.end_lineno < len(lines) else ""
        calls += "agent." in source
        expected = RAISES.match(after.strip())
        if expected is None:
            exec(source, scope)  # the README's own example code
            continue
        error = getattr(stripe, expected[1])
        with pytest.raises(error) as exc:
            exec(source, scope)
        assert exc.value.error is not None and exc.value.error.code == expected[2], source
    return calls


def test_the_readme_examples_work_as_written_against_the_demo_data(tmp_path: Path) -> None:
    folder = tmp_path / "local"
    shutil.copytree(EXAMPLE, folder)
    port, out = free_port(), tmp_path / "out.txt"
    proc, banner = start_local(port, tmp_path / "work", out, folder=folder)
    try:
        token = token_in(banner)
        first, (demo, after_edit) = readme_examples()
        scope: dict[str, Any] = {}
        assert run_as_written(first, token, port, scope) == 2
        assert run_as_written(demo, token, port, scope) == 7  # the list and six refunds

        # The edit the README describes: delete the four lines of the amount rule and save.
        policy = folder / "support-refunds.yaml"
        assert AMOUNT_RULE in policy.read_text()
        policy.write_text(policy.read_text().replace(AMOUNT_RULE, ""))
        deadline = time.monotonic() + 30
        while "manifests changed, applied:" not in out.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, out.read_text()
            time.sleep(0.05)
        assert run_as_written(after_edit, token, port, scope) == 1

        # What moved at the vendor is exactly what the comments say passed.
        upstream = re.search(r"stripe: \S+ → (http://\S+)", banner)
        assert upstream, banner
        direct = stripe.StripeClient("sk_test_readme", base_addresses={"api": upstream[1]})
        orders = scope["orders"]
        refunded = {d: direct.v1.charges.retrieve(orders[d]).amount_refunded for d in orders}
        assert refunded == {"order 1001": 15_000, "order 1002": 0, "order 1003": 4_000}
    finally:
        stop_local(proc, out, port)
