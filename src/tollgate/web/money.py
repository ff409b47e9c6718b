"""Micro-USD (the audit's integers) as dollars people read."""

from __future__ import annotations

from decimal import Decimal


def usd(micro: int, *, cents: bool = False) -> str:
    """`$1,234.50`; sub-cent amounts keep their digits (`$0.0083`) unless `cents` rounds them for an axis."""
    value = Decimal(micro) / 1_000_000
    if cents or value == value.quantize(Decimal("0.01")):
        return f"${value:,.2f}"
    text = f"{value:,.6f}".rstrip("0")
    return f"${text}"
