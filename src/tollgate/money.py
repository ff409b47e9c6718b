"""Money arithmetic in integers: micro-USD for spend, minor units for vendor amounts. Pure.

1 USD = 1,000,000 micro-USD, so SMS segments and single emails (fractions of a cent) count exactly,
and a Stripe cent is exactly 10,000 micro-USD. No float ever touches an amount.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation

from tollgate.record import record

MICRO_PER_USD = 1_000_000
# Lua in Redis compares with doubles: stay where every integer is exact.
MAX_MICRO_USD = 2**53 - 1

# https://docs.stripe.com/currencies#zero-decimal and #three-decimal
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])


def exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit."""
    c = currency.lower()
    if c in ZERO_DECIMAL:
        return 0
    if c in THREE_DECIMAL:
        return 3
    return 2


@record
class Money:
    """An amount in units of 10**-exponent of `currency` (Stripe minor units use exponent(currency))."""

    amount: int
    currency: str
    exponent: int

    @classmethod
    def minor(cls, amount_minor: int, currency: str) -> Money:
        return cls(amount_minor, currency.lower(), exponent(currency))

    @classmethod
    def micro_usd(cls, amount_micro_usd: int) -> Money:
        return cls(amount_micro_usd, "usd", 6)


def to_micro_usd(money: Money, usd_per_unit: Decimal) -> int:
    """Convert to micro-USD at `usd_per_unit` (USD for one whole unit), rounding up.

    Rounding up means a cap can only be reached early, never overshot by rounding.
    """
    value = Decimal(money.amount) * usd_per_unit * (Decimal(10) ** (6 - money.exponent))
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def parse_usd(value: str | int | Decimal) -> int:
    """'12.50' → 12_500_000 micro-USD; rejects floats' noise, negatives and sub-micro precision."""
    if isinstance(value, float):
        raise ValueError("give USD amounts as a string or integer, not a float")
    try:
        d = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not a decimal USD amount") from exc
    if not d.is_finite() or d < 0:
        raise ValueError(f"{value!r} must be a finite amount ≥ 0")
    micro = d * MICRO_PER_USD
    if micro != micro.to_integral_value():
        raise ValueError(f"{value!r} has more precision than one micro-dollar")
    if micro > MAX_MICRO_USD:
        raise ValueError(f"{value!r} is above the largest cap Tollgate can count exactly")
    return int(micro)


def format_usd(micro_usd: int) -> str:
    """12_500_000 → '$12.50'; keeps sub-cent digits when present ('$0.0083')."""
    return "$" + usd_digits(micro_usd)


def usd_digits(micro_usd: int) -> str:
    """The one way Tollgate writes an amount: 180_000_000 → '180.00', 8_300 → '0.0083', never '1.8E+2'."""
    d = Decimal(micro_usd) / MICRO_PER_USD
    text = f"{d:.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"
