"""Each access-log line is parsed once for settlement and the row writer (ingest.ParsedLines)."""

from __future__ import annotations

from tests.unit.audit.test_record import line

from tollgate.audit.ingest import ParsedLines
from tollgate.audit.record import from_line


def test_the_second_reader_takes_the_row_the_first_parsed() -> None:
    lines = [(line(request_id=f"r{i}"), f"f@{i}") for i in range(3)]
    parsed = ParsedLines()
    first = parsed.rows(lines)
    second = parsed.rows(lines)
    assert parsed.parsed == 3
    assert [a is b for a, b in zip(first, second, strict=True)] == [True] * 3
    assert first == [from_line(text, pos) for text, pos in lines]
    parsed.rows(lines)  # taken: a third read parses again
    assert parsed.parsed == 6


def test_a_position_holding_other_text_is_parsed_anew() -> None:
    # A file truncated in place and written again reuses its positions.
    parsed = ParsedLines()
    parsed.rows([(line(request_id="old"), "f@0")])
    (row,) = parsed.rows([(line(request_id="new"), "f@0")])
    assert row.row_id == "new" and parsed.parsed == 2


def test_what_is_kept_is_bounded_and_a_single_reader_keeps_nothing() -> None:
    parsed = ParsedLines(limit=2)
    parsed.rows([(line(request_id=f"r{i}"), f"f@{i}") for i in range(5)])
    assert len(parsed._kept) <= 2
    alone = ParsedLines(limit=0)
    alone.rows([(line(), "f@0")])
    assert alone._kept == {}
