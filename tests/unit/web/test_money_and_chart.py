"""Dollars as the report writes them, and the chart's round axis."""

from __future__ import annotations

import pytest

from tollgate.web.money import usd
from tollgate.web.svg import _nice_step


@pytest.mark.parametrize(
    ("micro", "shown"),
    [
        (0, "$0.00"),
        (1_234_560_000, "$1,234.56"),
        (200_000_000, "$200.00"),
        (8_300, "$0.0083"),  # one SMS segment keeps its sub-cent digits
        (1, "$0.000001"),
    ],
)
def test_micro_usd_read_as_dollars(micro: int, shown: str) -> None:
    assert usd(micro) == shown


def test_axis_labels_round_sub_cent_amounts_to_cents() -> None:
    assert usd(8_300, cents=True) == "$0.01"


@pytest.mark.parametrize(
    ("raw", "step"), [(52_500_000, 60_000_000), (1, 1), (260_000, 300_000), (10_000, 10_000)]
)
def test_the_axis_step_is_the_smallest_round_amount_at_or_above(raw: float, step: int) -> None:
    assert _nice_step(raw) == step
