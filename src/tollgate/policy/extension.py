"""What a vendor adds to a SpendPolicy, and where policy/ finds it. Pure.

A SpendPolicy's fields are one schema for every vendor (the CRD is one document), but some of them mean
something for some vendors only (`customers` for Stripe, `prices` for Twilio) and their entries follow the
vendor's own id grammar. That knowledge lives in each vendor's package (`vendors/<vendor>/policy.py`), as a
`PolicyExtension`; the SpendPolicy model, the CRD generator and the grant compiler ask `extension(vendor)`.

policy/ sits below vendors/ and imports no vendor module: the registry (`tollgate.vendors.VENDORS`, each
vendor carrying its extension) is loaded by name on first use, as a plugin list would be.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any

from tollgate.record import record

if TYPE_CHECKING:  # for the annotation only: spend_policy imports this module
    from tollgate.policy.spend_policy import SpendPolicySpec

# unit → destination prefix ("" where flat) → micro-USD per unit; None: refused unless the policy prices it.
PriceTable = dict[str, dict[str, int | None]]
Schema = dict[str, Any]

REGISTRY = "tollgate.vendors"


@record
class ItemRule:
    """The shape of one entry of a list field (an account id, a number prefix, a domain) for one vendor."""

    pattern: re.Pattern[str]  # anchored; RE2-readable, as the CRD's item pattern accepts any vendor's shape
    problem: str  # completes "'<entry>' …": "is not a Stripe customer id (cus_…)"
    # The body of a CEL `self.<field>.all(…)` telling this vendor's entries from another's, e.g.
    # "a, a.startsWith('AC')", with its message; "" where the item pattern alone is enough.
    cel: str = ""
    cel_message: str = ""

    def check(self, entry: str) -> None:
        """ValueError naming the entry unless it has this vendor's shape (a subclass may check more)."""
        if not self.pattern.fullmatch(entry):
            raise ValueError(f"{entry!r} {self.problem}")


def no_prices(policy: SpendPolicySpec) -> PriceTable:
    """A vendor whose every amount is in the request or the objects it names (Stripe)."""
    return {}


@record
class PolicyExtension:
    """The policy fields a vendor reads, their rules, and its prices.

    `fields` are the vendor-dependent fields (snake_case) this vendor's policies may set; set on any other
    vendor's policy they are an error, never silently ignored (a `customers` scope on an SMS policy would
    look like a limit and be none)."""

    fields: tuple[str, ...] = ()
    items: Mapping[str, ItemRule] = field(default_factory=dict)  # field → entry shape
    required: Mapping[str, str] = field(default_factory=dict)  # field → why, when it is missing or empty
    crd: Mapping[str, Schema] = field(default_factory=dict)  # CRD keywords for its own fields, by path
    prices: Callable[[SpendPolicySpec], PriceTable] = no_prices  # defaults with the policy's on top


def extensions() -> dict[str, PolicyExtension]:
    """vendor name → its policy extension, in the registry's order."""
    registry = importlib.import_module(REGISTRY)
    return {name: vendor.policy for name, vendor in registry.VENDORS.items()}


def extension(vendor: str) -> PolicyExtension:
    return extensions()[vendor]


def vendors_of(field_name: str) -> tuple[str, ...]:
    """The vendors whose policies may set `field_name` (empty: a field every vendor reads)."""
    return tuple(name for name, ext in extensions().items() if field_name in ext.fields)
