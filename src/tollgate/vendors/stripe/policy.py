"""What a Stripe SpendPolicy may say beyond the common fields: the customers and connected accounts calls may
touch, and the currencies it accepts. Every amount is in the request or the objects it names, so Stripe has
no prices of its own. Pure."""

from __future__ import annotations

import re

from tollgate.policy.extension import ItemRule, PolicyExtension

CUSTOMER = re.compile(r"^cus_[A-Za-z0-9]+$")
ACCOUNT = re.compile(r"^acct_[A-Za-z0-9]+$")

POLICY = PolicyExtension(
    fields=("customers", "currencies", "connected_accounts", "approval"),
    items={
        "customers": ItemRule(CUSTOMER, "is not a Stripe customer id (cus_…)"),
        "connected_accounts": ItemRule(
            ACCOUNT,
            "is not a Stripe account id (acct_…)",
            cel="a, a.startsWith('acct_')",
            cel_message="a connectedAccounts entry is a Stripe account id (acct_…)",
        ),
    },
)
