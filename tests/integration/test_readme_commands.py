"""The README's command-line examples run as written (from the repository root, where `.venv` is)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
BIN = Path(sys.executable).parent


def shell_block_with(command: str) -> list[list[str]]:
    """The commands of the first ```sh block that runs `command`, continuation lines joined, comments gone."""
    for block in re.findall(r"```sh\n(.*?)```", README, re.DOTALL):
        text = block.replace("\\\n", " ")
        if command in text:
            return [shlex.split(line, comments=True) for line in text.splitlines() if line.strip()]
    raise AssertionError(f"no ```sh block in README.md runs {command!r}")


def test_the_envoy_render_example_writes_a_config_envoy_accepts(tmp_path: Path) -> None:
    render, validate = shell_block_with("tollgate envoy render")
    out = render[render.index("--out") + 1]
    render[render.index("--out") + 1] = str(tmp_path / out)
    validate[validate.index("-c") + 1] = str(tmp_path / out)
    for argv in (render, validate):
        assert argv[0].startswith(".venv/bin/"), argv  # as the README says, from the repository root
        argv[0] = str(BIN / Path(argv[0]).name)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, f"{shlex.join(argv)}\n{done.stdout}\n{done.stderr}"
    assert "127.0.0.1" in (tmp_path / out).read_text() and "api.stripe.com" in (tmp_path / out).read_text()
