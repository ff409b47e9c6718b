"""checkov, the Kubernetes scanner the chart tests run over the rendered chart, from PyPI.

checkov pins many dependencies of its own (boto3, aiohttp, jsonschema, ...), so it is not one of
Tollgate's dev dependencies: it gets a virtualenv of its own under
`~/.cache/tollgate-tools/checkov-<version>/`, made once (a few minutes) and reused. The same lock as
kubetools.py keeps parallel runs from building it twice; a `.complete` marker written last tells a
finished venv from one a killed run left half-built.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.kubetools import ToolUnavailable, _locked, cache_root

CHECKOV_VERSION = "3.3.30"


def checkov_binary() -> Path:
    return _checkov_venv() / "bin" / "checkov"


@functools.cache
def _checkov_venv() -> Path:
    venv = cache_root() / f"checkov-{CHECKOV_VERSION}"
    marker = venv / ".complete"
    if marker.exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with _locked(venv.parent / f".{venv.name}.lock"):
        if marker.exists():  # another run built it while we waited for the lock
            return venv
        if venv.exists():
            shutil.rmtree(venv)
        _run([sys.executable, "-m", "venv", str(venv)], "create a virtualenv for checkov")
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run([*pip, f"checkov=={CHECKOV_VERSION}"], f"pip install checkov=={CHECKOV_VERSION}")
        marker.write_text(CHECKOV_VERSION)
    return venv


def _run(argv: list[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolUnavailable(f"could not {what}: {exc}") from exc
    if done.returncode != 0:
        raise ToolUnavailable(
            f"could not {what} (exit {done.returncode}); a package index must be reachable the first "
            f"time (later runs use {cache_root()}).\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
