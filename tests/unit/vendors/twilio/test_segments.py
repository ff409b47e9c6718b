"""SMS segment counting: GSM-7 (basic and extension table) against UCS-2, and where messages split."""

import pytest

from tollgate.vendors.twilio.segments import GSM7, GSM7_BASIC, GSM7_EXTENSION, UCS2, Segments, count

EMOJI = "😀"  # outside the BMP: two UTF-16 units


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("", Segments(GSM7, 0, 0), id="an empty body is no segment"),
        pytest.param("Your code is 123456", Segments(GSM7, 19, 1), id="plain text is GSM-7"),
        pytest.param("a" * 160, Segments(GSM7, 160, 1), id="160 GSM-7 characters fit one SMS"),
        pytest.param("a" * 161, Segments(GSM7, 161, 2), id="161 split into segments of 153"),
        pytest.param("a" * 306, Segments(GSM7, 306, 2), id="306 fill two segments of 153 exactly"),
        pytest.param("a" * 307, Segments(GSM7, 307, 3), id="307 need a third segment"),
        pytest.param("{}", Segments(GSM7, 4, 1), id="extension characters take two septets each"),
        pytest.param("€" * 80, Segments(GSM7, 160, 1), id="80 euro signs are 160 septets, one SMS"),
        pytest.param("€" * 81, Segments(GSM7, 162, 2), id="81 euro signs split 76 and 5"),
        pytest.param(
            "a" * 152 + "€" + "a" * 152,
            Segments(GSM7, 306, 3),
            id="an escape pair never straddles segments so 306 septets can need three",
        ),
        pytest.param(
            "Ça fait 5€ ^_^ à Zürich", Segments(GSM7, 26, 1), id="accents in the GSM-7 table stay GSM-7"
        ),
        pytest.param("ж" * 70, Segments(UCS2, 70, 1), id="70 UCS-2 characters fit one SMS"),
        pytest.param("ж" * 71, Segments(UCS2, 71, 2), id="71 split into segments of 67"),
        pytest.param("ж" * 134, Segments(UCS2, 134, 2), id="134 fill two segments of 67 exactly"),
        pytest.param("ж" * 135, Segments(UCS2, 135, 3), id="135 need a third segment"),
        pytest.param("hello " + EMOJI, Segments(UCS2, 8, 1), id="one emoji makes the whole body UCS-2"),
        pytest.param(EMOJI * 35, Segments(UCS2, 70, 1), id="35 emoji are 70 units, one SMS"),
        pytest.param(EMOJI * 36, Segments(UCS2, 72, 2), id="36 emoji split 33 and 3"),
        pytest.param(
            "a" * 66 + EMOJI + "a" * 66,
            Segments(UCS2, 134, 3),
            id="a surrogate pair never straddles segments so 134 units can need three",
        ),
        pytest.param("don’t", Segments(UCS2, 5, 1), id="a curly apostrophe is not GSM-7"),
        pytest.param("ç", Segments(UCS2, 1, 1), id="a lowercase c cedilla is not in the GSM-7 table"),
        pytest.param("a\tb", Segments(UCS2, 3, 1), id="a tab is not GSM-7"),
        pytest.param("a" * 100, Segments(GSM7, 100, 1), id="100 GSM-7 characters are one segment"),
        pytest.param("a" * 99 + EMOJI, Segments(UCS2, 101, 2), id="the same length with an emoji is two"),
    ],
)
def test_segments_follow_the_encoding_and_the_concatenation_limits(body: str, expected: Segments) -> None:
    assert count(body) == expected


def test_the_gsm7_tables_are_the_127_basic_characters_and_the_10_escaped_ones() -> None:
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert "\x1b" not in GSM7_BASIC
