"""Demo data for localstripe, so the README's refund, cap and full-refund examples run as written.

localstripe keeps everything in memory, so a fresh (or restarted) localstripe has no charge to refund;
`seed` gives it one customer and three paid charges, each with a description the README looks them up
by (`{c.description: c.id for c in agent.v1.charges.list().data}`), since localstripe mints the ids.
The amounts fit the example policy (deploy/examples/local: $200 a day, at most $100 per refund).
"""

from __future__ import annotations

import httpx

from tollgate.money import format_usd
from tollgate.record import record

# Any sk_test_ key works against localstripe; this one never leaves this machine.
DEMO_KEY = "sk_test_tollgate_local_demo"
CUSTOMER_EMAIL = "demo@example.com"
CHARGES: tuple[tuple[str, int], ...] = (("order 1001", 15_000), ("order 1002", 8_000), ("order 1003", 4_000))


@record
class Demo:
    customer: str
    charges: dict[str, tuple[str, int]]  # description → (charge id, amount in cents)

    def describe(self) -> str:
        listed = ", ".join(f"{d} {cid} {format_usd(c * 10_000)}" for d, (cid, c) in self.charges.items())
        return f"customer {self.customer} ({CUSTOMER_EMAIL}); charges {listed}"


def seed(base_url: str, *, timeout_s: float = 10.0) -> Demo:
    """Create the demo customer and charges in the localstripe at `base_url`."""
    with httpx.Client(base_url=base_url, auth=(DEMO_KEY, ""), timeout=timeout_s) as client:
        customer = _post(client, "/v1/customers", {"email": CUSTOMER_EMAIL, "name": "Demo Customer"})
        charges = {}
        for description, amount in CHARGES:
            params = {
                "amount": str(amount),
                "currency": "usd",
                "customer": customer,
                "source": "pm_card_visa",
                "description": description,
            }
            charges[description] = (_post(client, "/v1/charges", params), amount)
    return Demo(customer, charges)


def _post(client: httpx.Client, path: str, params: dict[str, str]) -> str:
    reply = client.post(path, data=params)
    reply.raise_for_status()
    return str(reply.json()["id"])
