"""What a Resend SpendPolicy may say beyond the common fields: the recipients mail may go to, and the price of
one email. Pure."""

from __future__ import annotations

import re

from tollgate.money import parse_usd
from tollgate.policy.crd import USD
from tollgate.policy.extension import ItemRule, PolicyExtension, PriceTable
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.vendors.resend.prices import DEFAULT_EMAIL_USD, EMAIL

DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# DOMAIN as the CRD reads it: no length lookahead (RE2 has none), either case (the model lowercases first),
# and an address at the domain.
_CRD_RECIPIENT = re.compile(r"^(.*@)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


def prices(policy: SpendPolicySpec) -> PriceTable:
    usd = policy.price_per_email_usd
    return {EMAIL: {"": parse_usd(DEFAULT_EMAIL_USD if usd is None else usd)}}


class _Recipient(ItemRule):
    """The model checks the domain part with DOMAIN; the CRD pattern is the whole entry."""

    def check(self, entry: str) -> None:
        if not DOMAIN.fullmatch(entry.rpartition("@")[2]):
            raise ValueError(f"{entry!r} {self.problem}")


POLICY = PolicyExtension(
    fields=("recipients", "price_per_email_usd", "approval"),
    items={
        "recipients": _Recipient(
            _CRD_RECIPIENT,
            "is not an email domain like 'example.com' or an address at one",
            cel="r, !r.startsWith('+') || r.contains('@')",
            cel_message="resend recipients are email domains like 'example.com' or addresses at one",
        )
    },
    crd={"pricePerEmailUsd": USD},
    prices=prices,
)
