"""The one rule for a test whose tool or server is missing: skip it on a developer's machine, fail it in
CI, where a skipped tier would pass without proving anything."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """CI is set to anything but empty, "false" or "0" (GitHub Actions and most runners set CI=true)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "false", "0")


def unavailable(message: str) -> NoReturn:
    """Skip the test for want of a tool or server; fail it in CI, which provides them all."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def required(what: str, *missing: type[Exception]) -> Iterator[None]:
    """Wrap what finds a tool or server: one of the `missing` errors skips the test (fails it in CI),
    saying `no <what>: <error>`."""
    try:
        yield
    except missing as exc:
        unavailable(f"no {what}: {exc}")
