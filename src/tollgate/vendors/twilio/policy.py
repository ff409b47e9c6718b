"""What a Twilio SpendPolicy may say beyond the common fields: the account SIDs calls may name (required), the
numbers messages may go to, and prices per destination over the defaults in prices.py. Pure."""

from __future__ import annotations

import re

from tollgate.money import parse_usd
from tollgate.policy.crd import USD, cel_rule
from tollgate.policy.extension import ItemRule, PolicyExtension, PriceTable
from tollgate.policy.spend_policy import PHONE_PREFIX, SpendPolicySpec
from tollgate.vendors.twilio.prices import CALL, DEFAULT_USD, MMS, SMS_SEGMENT

ACCOUNT = re.compile(r"^AC[0-9a-fA-F]{32}$")


def prices(policy: SpendPolicySpec) -> PriceTable:
    table: PriceTable = {
        unit: {prefix: None if usd is None else parse_usd(usd) for prefix, usd in row.items()}
        for unit, row in DEFAULT_USD.items()
    }
    for p in policy.prices or []:
        if p.sms_segment_usd is not None:
            table[SMS_SEGMENT][p.prefix] = parse_usd(p.sms_segment_usd)
        if p.mms_usd is not None:
            table[MMS][p.prefix] = parse_usd(p.mms_usd)
    if policy.call_reservation_usd is not None:
        table[CALL] = {"": parse_usd(policy.call_reservation_usd)}
    return table


POLICY = PolicyExtension(
    fields=("connected_accounts", "recipients", "prices", "call_reservation_usd"),
    items={
        "connected_accounts": ItemRule(
            ACCOUNT,
            "is not a Twilio account SID (AC followed by 32 hex digits)",
            cel="a, a.startsWith('AC')",
            cel_message="a twilio connectedAccounts entry is a Twilio account SID (AC followed by 32 hex digits)",
        ),
        "recipients": ItemRule(
            PHONE_PREFIX,
            "is not an E.164 number or prefix like '+14155550100' or '+1415'",
            cel="r, r.startsWith('+') && !r.contains('@')",
            cel_message="twilio recipients are E.164 numbers or prefixes like '+14155550100' or '+1415'",
        ),
    },
    # Every Twilio call names an account SID in its path; the gateway forwards only those listed here.
    required={
        "connected_accounts": "connectedAccounts is required for twilio: list the account SID (AC…) the "
        "VaultKey's credentials belong to, and any subaccounts the agent may use"
    },
    crd={
        # Duplicate prefixes: a list keyed by prefix is rejected by the API server itself, at no CEL cost.
        "prices": {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["prefix"]},
        "prices[]": {
            "x-kubernetes-validations": [
                cel_rule(
                    "has(self.smsSegmentUsd) || has(self.mmsUsd)", "sets neither smsSegmentUsd nor mmsUsd"
                )
            ]
        },
        "prices[].prefix": {"pattern": PHONE_PREFIX.pattern},
        "prices[].smsSegmentUsd": USD,
        "prices[].mmsUsd": USD,
        "callReservationUsd": USD,
    },
    prices=prices,
)
