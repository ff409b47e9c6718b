"""Stripe's route table: method + path template → how the call is priced and whom it touches. Pure.

Every route the stripe SDK can call is in `routes.csv` (generated from the SDK with the rules and the
pricing principle in catalog.py, checked by tests/unit/vendors/stripe/test_routes.py). A path the table
does not know is still refused when it writes (unknown.write, unpriced) and out of scope when it reads.

Pricing rules (facts.py implements them):
  free              moves no money
  unpriced          may move money Tollgate cannot price: denied with the route's reason, never guessed
  charge            POST /v1/charges: `amount` unless `capture=false` (an authorisation only)
  charge_capture    `amount`, else what is still uncaptured on the charge
  charge_refund     the legacy /v1/charges/{id}/refunds: `amount`, else what is left to refund on it
  pi_create         `amount` when `confirm=true` and not `capture_method=manual`
  pi_confirm        the intent's amount unless it (or this call) uses manual capture
  pi_capture        `amount_to_capture`, else the intent's `amount_capturable`
  refund            `amount`, else what is left to refund on the charge / payment intent
  amount            `amount` + `currency` params (transfers, payouts, top-ups, Treasury flows)
  object_amount     the path object's `amount` (a payout reversed)
  transfer_reversal `amount`, else what is left of the transfer
  fee_refund        `amount`, else what is left of the application fee
  signed_amount     |`amount`| + `currency` (a customer balance credit or debit)
  credit_note       `refund_amount` + `credit_amount` in the invoice's currency
  credit_grant      `amount[monetary][value]` + `amount[monetary][currency]`
  invoice_create    free unless Stripe would finalize and charge it by itself (`auto_advance`)
  invoice_update    free unless it turns `auto_advance` on for an automatically charged invoice
  invoice_finalize  the invoice's `amount_remaining` when Stripe will charge it, else free
  invoice_pay       the invoice's `amount_remaining`
  sub_create        free when the first invoice cannot be charged by this call, else unpriced
  sub_update        free when only non-billing fields change, else unpriced
  sub_item          free when prorations wait for the next invoice, else unpriced
  sub_resume        free with `billing_cycle_anchor=unchanged`, else unpriced
  sub_cancel        free unless `invoice_now=true` (which bills usage now)

Scope rules (whom the call touches, for customer scope):
  none            not about a customer (a payout, the balance, creating a customer, the catalog)
  param           the `customer` parameter
  list            a list: in scope only when filtered by an in-scope `customer`
  account_list    a list that cannot be filtered by customer (transfers, payouts, balance transactions):
                  out of scope whenever a customer scope is set
  customer_path   /v1/customers/{customer}/…
  object          the object in the path, read from Stripe for its customer
  ref:<param>     the object a parameter names (`invoice`, `subscription`), read for its customer
  refund_target   the `charge` / `payment_intent` parameter, read for its customer
  charge_filter   a list filtered by `charge` / `payment_intent`, read for its customer
  account         the connected account in the path, which must be in connectedAccounts
  unknown         a read Tollgate cannot scope (a search, `/v1/charges/search`, among them, since
                  `search` is no object id): out of scope whenever a customer scope is set

Under a customer scope, `expand` may only follow references that stay with the same customer (facts.py,
_EXPAND_SAME_CUSTOMER), and only on routes whose own object is checked against the scope.
"""

from __future__ import annotations

import re
from importlib import resources

from tollgate.vendors.base import Endpoint
from tollgate.vendors.routes import Route, RouteTable
from tollgate.vendors.stripe import catalog

ROUTES: tuple[Route, ...] = tuple(
    Route(r.method, r.template, r.name, r.pricing, r.scope, r.reason, r.api)
    for r in catalog.parse_csv(resources.files(__package__).joinpath("routes.csv").read_text())
)

# A Stripe object id: a lower-case prefix, '_', then letters, digits and '_' (ch_3Mxyz…, pm_card_visa).
# Anything else in an id's place ('search', 'ch_1;x', an id with '.' in it) is no object Tollgate knows.
ID_PATTERN = r"[a-z]{1,24}_[A-Za-z0-9_]{1,255}"
ID = re.compile(f"^{ID_PATTERN}$")
ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]{1,255}$")

_TABLE = RouteTable(ROUTES, id_pattern=ID_PATTERN, unknown_scope="unknown")


def match(method: str, path: str) -> Endpoint:
    return _TABLE.match(method, path)


def route(method: str, path: str) -> Route | None:
    found = _TABLE.find(method, path)
    return found[0] if found else None


def collection_of(template: str) -> str:
    """'/v1/charges/{id}/capture' → 'charges'; '/v1/checkout/sessions/{id}' → 'checkout/sessions': the
    collection whose object the first placeholder names (read at /v1/<collection>/<id>)."""
    segments = template.split("/")[2:]
    end = next((i for i, s in enumerate(segments) if s.startswith("{")), len(segments))
    return "/".join(segments[:end])


def example_path(template: str) -> str:
    """A path the template matches ('/v1/charges/{id}' → '/v1/charges/id_0'): for checking patterns."""
    return re.sub(
        r"\{(\w+)\}", lambda m: "acct_0" if m.group(1) == "account" else f"{m.group(1)}_0", template
    )
