"""`@record` values: compared and hashed by value at run time, and read-only to the type checker, which
`make lint` runs over every package (the guarantee a frozen dataclass gave, without its cost per build)."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
from mypy import api

from tollgate.record import record

SRC = Path(__file__).resolve().parents[2] / "src"


@record
class Point:
    x: int
    y: int = 0


def test_a_record_compares_hashes_and_replaces_by_value() -> None:
    assert Point(1, 2) == Point(1, 2) != Point(1, 3)
    assert len({Point(1, 2), Point(1, 2)}) == 1
    assert dataclasses.replace(Point(1, 2), y=5) == Point(1, 5)


@pytest.mark.parametrize(("body", "refused"), [("p.x = 2", True), ("q = Point(p.x + 1)", False)])
def test_the_type_checker_refuses_an_assignment_to_a_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, refused: bool
) -> None:
    snippet = tmp_path / "uses_point.py"
    snippet.write_text(
        textwrap.dedent(
            """
            from tollgate.record import record

            @record
            class Point:
                x: int

            p = Point(1)
            """
        )
        + body
        + "\n"
    )
    monkeypatch.setenv("MYPYPATH", str(SRC))
    out, _, status = api.run(
        [str(snippet), "--config-file", "/dev/null", "--cache-dir", str(tmp_path / "cache")]
    )
    assert (status == 1 and 'Property "x" defined in "Point" is read-only' in out) is refused, out
