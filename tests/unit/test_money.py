from decimal import Decimal

import pytest

from tollgate.money import Money, format_usd, parse_usd, to_micro_usd, usd_digits


@pytest.mark.parametrize(
    ("money", "rate", "expected"),
    [
        pytest.param(Money.minor(1, "usd"), "1", 10_000, id="one cent is 10,000 micro-USD"),
        pytest.param(Money.minor(1999, "usd"), "1", 19_990_000, id="$19.99"),
        pytest.param(Money.minor(100, "jpy"), "0.0067", 670_000, id="zero-decimal yen: 100 JPY"),
        pytest.param(Money.minor(1000, "kwd"), "3.25", 3_250_000, id="three-decimal dinar: 1.000 KWD"),
        pytest.param(Money.minor(1, "eur"), "1.085", 10_850, id="a euro cent at 1.085"),
        pytest.param(Money.minor(1, "eur"), "1.0850001", 10_851, id="rounding goes up, never down"),
        pytest.param(Money.micro_usd(8300), "1", 8300, id="micro-USD passes through"),
    ],
)
def test_conversion_to_micro_usd_is_exact_or_rounds_up(money: Money, rate: str, expected: int) -> None:
    assert to_micro_usd(money, Decimal(rate)) == expected


def test_parse_usd_accepts_strings_and_integers() -> None:
    assert parse_usd("12.50") == 12_500_000
    assert parse_usd(250) == 250_000_000
    assert parse_usd("0.000001") == 1


@pytest.mark.parametrize("bad", ["-1", "abc", "0.0000001", "NaN", "1e20"])
def test_parse_usd_rejects_negative_garbage_sub_micro_and_huge(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_usd(bad)


def test_parse_usd_rejects_floats() -> None:
    with pytest.raises(ValueError, match="not a float"):
        parse_usd(0.1)  # type: ignore[arg-type]


def test_format_usd_keeps_sub_cent_digits() -> None:
    assert format_usd(12_500_000) == "$12.50"
    assert format_usd(8300) == "$0.0083"
    assert format_usd(0) == "$0.00"


@pytest.mark.parametrize(
    ("micro_usd", "text"),
    [(180_000_000, "180.00"), (2_500_000, "2.50"), (8300, "0.0083"), (1, "0.000001"), (0, "0.00"),
     (10**12, "1000000.00")],
)  # fmt: skip
def test_usd_digits_are_plain_decimals_never_exponents(micro_usd: int, text: str) -> None:
    assert usd_digits(micro_usd) == text
