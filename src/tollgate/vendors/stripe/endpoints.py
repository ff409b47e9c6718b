"""Stripe's route table: method + path template → how the call is priced and whom it touches. Pure.

Pricing rules (facts.py implements them):
  free            moves no money
  unpriced        may move money Tollgate cannot price: denied, never guessed
  charge          POST /v1/charges: `amount` unless `capture=false` (an authorisation only)
  charge_capture  `amount`, else what is still uncaptured on the charge
  pi_create       `amount` when `confirm=true` and not `capture_method=manual`
  pi_confirm      the intent's amount unless it (or this call) uses manual capture
  pi_capture      `amount_to_capture`, else the intent's `amount_capturable`
  refund          `amount`, else what is left to refund on the charge / payment intent
  amount          `amount` + `currency` params (transfers, payouts)
  invoice_pay     the invoice's `amount_remaining`
  sub_update      free when only non-billing fields change, else unpriced
  sub_cancel      free unless `invoice_now=true` (which bills usage now)

Scope rules (whom the call touches, for customer scope):
  none            not about a customer (a payout, the balance, creating a customer)
  param           the `customer` parameter
  list            a list: in scope only when filtered by an in-scope `customer`
  account_list    a list that cannot be filtered by customer (transfers, payouts, balance transactions):
                  out of scope whenever a customer scope is set
  customer_path   /v1/customers/{id}
  object          the object in the path, read from Stripe for its customer
  refund_target   the `charge` / `payment_intent` parameter, read for its customer
  charge_filter   a list filtered by `charge` / `payment_intent`, read for its customer
  unknown         a read Tollgate does not know (a search, `/v1/charges/search`, among them, since
                  `search` is no object id): out of scope whenever a customer scope is set

Under a customer scope, `expand` may only follow references that stay with the same customer (facts.py,
_EXPAND_SAME_CUSTOMER), and only on routes whose own object is checked against the scope.
"""

from __future__ import annotations

import re

from tollgate.vendors.base import Endpoint
from tollgate.vendors.routes import Route, RouteTable

ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/charges", "charges.create", "charge", "param"),
    Route("GET", "/v1/charges", "charges.list", "free", "list"),
    Route("GET", "/v1/charges/{id}", "charges.retrieve", "free", "object"),
    Route("POST", "/v1/charges/{id}", "charges.update", "free", "object"),
    Route("POST", "/v1/charges/{id}/capture", "charges.capture", "charge_capture", "object"),
    Route("POST", "/v1/payment_intents", "payment_intents.create", "pi_create", "param"),
    Route("GET", "/v1/payment_intents", "payment_intents.list", "free", "list"),
    Route("GET", "/v1/payment_intents/{id}", "payment_intents.retrieve", "free", "object"),
    Route("POST", "/v1/payment_intents/{id}/confirm", "payment_intents.confirm", "pi_confirm", "object"),
    Route("POST", "/v1/payment_intents/{id}/capture", "payment_intents.capture", "pi_capture", "object"),
    Route("POST", "/v1/payment_intents/{id}/cancel", "payment_intents.cancel", "free", "object"),
    Route("POST", "/v1/refunds", "refunds.create", "refund", "refund_target"),
    Route("GET", "/v1/refunds", "refunds.list", "free", "charge_filter"),
    Route("GET", "/v1/refunds/{id}", "refunds.retrieve", "free", "object"),
    Route("POST", "/v1/refunds/{id}", "refunds.update", "free", "object"),
    Route("POST", "/v1/transfers", "transfers.create", "amount", "none"),
    Route("GET", "/v1/transfers", "transfers.list", "free", "account_list"),
    Route("GET", "/v1/transfers/{id}", "transfers.retrieve", "free", "none"),
    Route("POST", "/v1/payouts", "payouts.create", "amount", "none"),
    Route("GET", "/v1/payouts", "payouts.list", "free", "account_list"),
    Route("GET", "/v1/payouts/{id}", "payouts.retrieve", "free", "none"),
    Route("POST", "/v1/customers", "customers.create", "free", "none"),
    Route("GET", "/v1/customers", "customers.list", "free", "unknown"),
    Route("GET", "/v1/customers/{customer}", "customers.retrieve", "free", "customer_path"),
    Route("POST", "/v1/customers/{customer}", "customers.update", "free", "customer_path"),
    Route("DELETE", "/v1/customers/{customer}", "customers.delete", "free", "customer_path"),
    Route(
        "GET",
        "/v1/customers/{customer}/payment_methods",
        "customers.payment_methods",
        "free",
        "customer_path",
    ),
    Route("GET", "/v1/invoices", "invoices.list", "free", "list"),
    Route("GET", "/v1/invoices/{id}", "invoices.retrieve", "free", "object"),
    Route("POST", "/v1/invoices/{id}/pay", "invoices.pay", "invoice_pay", "object"),
    Route("POST", "/v1/invoices/{id}/void", "invoices.void", "free", "object"),
    Route("GET", "/v1/subscriptions", "subscriptions.list", "free", "list"),
    Route("GET", "/v1/subscriptions/{id}", "subscriptions.retrieve", "free", "object"),
    Route("POST", "/v1/subscriptions/{id}", "subscriptions.update", "sub_update", "object"),
    Route("DELETE", "/v1/subscriptions/{id}", "subscriptions.cancel", "sub_cancel", "object"),
    Route("GET", "/v1/disputes", "disputes.list", "free", "charge_filter"),
    Route("GET", "/v1/disputes/{id}", "disputes.retrieve", "free", "object"),
    Route("POST", "/v1/disputes/{id}", "disputes.update", "free", "object"),
    Route("POST", "/v1/disputes/{id}/close", "disputes.close", "free", "object"),
    Route("GET", "/v1/balance", "balance.retrieve", "free", "none"),
    Route("GET", "/v1/balance_transactions", "balance_transactions.list", "free", "account_list"),
)

# A Stripe object id: a lower-case prefix, '_', then letters, digits and '_' (ch_3Mxyz…, pm_card_visa).
# Anything else in an id's place ('search', 'ch_1;x', an id with '.' in it) is no object Tollgate knows.
ID_PATTERN = r"[a-z]{1,24}_[A-Za-z0-9_]{1,255}"
ID = re.compile(f"^{ID_PATTERN}$")
ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]{1,255}$")

_TABLE = RouteTable(ROUTES, id_pattern=ID_PATTERN, unknown_scope="unknown")


def match(method: str, path: str) -> Endpoint:
    return _TABLE.match(method, path)


def collection_of(template: str) -> str:
    """'/v1/charges/{id}/capture' → 'charges'."""
    return template.split("/")[2]
