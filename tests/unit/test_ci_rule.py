"""tests/support/ci.py: the one rule every tier uses to tell CI (where a missing tool fails) from a
developer's machine (where it skips)."""

from __future__ import annotations

import pytest
from tests.support.ci import in_ci, required


@pytest.mark.parametrize(
    ("value", "ci"),
    [
        (None, False),
        ("", False),
        ("false", False),
        ("False", False),
        ("0", False),
        ("true", True),
        ("1", True),
        ("yes", True),
        ("woodpecker", True),
    ],
)
def test_ci_is_any_value_but_empty_false_or_zero(
    monkeypatch: pytest.MonkeyPatch, value: str | None, ci: bool
) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is ci


class Missing(Exception):
    pass


def test_a_missing_tool_skips_here_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    def find() -> None:
        with required("helm", Missing):
            raise Missing("not on PATH")

    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no helm: not on PATH"):
        find()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no helm: not on PATH"):
        find()
    with pytest.raises(ValueError), required("helm", Missing):  # any other error is the test's own
        raise ValueError("a bug")
