"""Every Stripe route the SDK can call, classified by family: a pricing rule and a scope rule each. Pure.

**The pricing principle: a call costs the most money it can cause to move without a further call by the
agent.** Free when nothing moves (the catalog, customers, metadata, tokens, files, setup intents, and
checkout sessions, payment links and invoices a customer must still pay). Priced from the request when
the amount is in it, from Stripe's objects when it is implied (a full refund, a finalized invoice). Where
only Stripe could compute it (prorations invoiced now, a quote accepted, a schedule that bills), the call
is refused with a reason that says why and, where there is one, which parameter makes it free.

`routes.csv` beside this file is generated from the installed SDK with these rules
(`tollgate dev stripe-routes`); `endpoints.py` serves it. A route no rule covers stops the generator: an
SDK upgrade that brings a new family is classified by a person, never by default.

Scope: `none` (touches no customer), `param` (the `customer` parameter), `optional_param` (the
`customer` parameter when there is one: a token or payment method cloned from a customer), `customer_path`
(/v1/customers/{customer}/…), `object` (the path's object, read for its customer), `ref:<param>` (the
object a parameter names, read for its customer), `list` (a list filtered by `customer`), `account`
(the connected account in the path, checked against connectedAccounts), and `unknown` / `account_list`
(out of scope under a customer scope: the call can reach any customer's data).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

from tollgate.record import record

_V2_UNREAD = (
    "v2 requests carry JSON bodies, which Tollgate does not read yet, so it cannot tell what this call does"
)
_TEST_MONEY = "a test-mode simulation of money moving; Tollgate does not price simulations"


@record
class Rule:
    family: str
    pattern: str  # "POST /v1/charges/{}/capture": '*' any method or one segment, '**' the rest, {} an id
    pricing: str
    scope: str
    reason: str = ""  # why an unpriced route is refused, and what makes it free where something does

    def matches(self, method: str, shape: str) -> bool:
        return _compiled(self.pattern).fullmatch(f"{method} {shape}") is not None


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _CACHE:
        method, _, path = pattern.partition(" ")
        out = re.escape(path).replace(r"\*\*", ".*").replace(r"\*", "[^/]+").replace(r"\{\}", r"\{\}")
        _CACHE[pattern] = re.compile(("[A-Z]+" if method == "*" else re.escape(method)) + " " + out + "$")
    return _CACHE[pattern]


def R(family: str, pattern: str, pricing: str = "free", scope: str = "none", reason: str = "") -> Rule:
    return Rule(family, pattern, pricing, scope, reason)


# First match wins: specific money-moving routes first, then families, then the catch-alls per prefix.
RULES: tuple[Rule, ...] = (
    # ---- charges and refunds (priced as before) -----------------------------------------------------
    R("charges", "POST /v1/charges", "charge", "param"),
    R("charges", "POST /v1/charges/{}/capture", "charge_capture", "object"),
    R("charges", "POST /v1/charges/{}/refund", "charge_refund", "object"),
    R("charges", "POST /v1/charges/{}/refunds", "charge_refund", "object"),
    R("charges", "GET /v1/charges/search", "free", "unknown"),
    R("charges", "GET /v1/charges", "free", "list"),
    R("charges", "* /v1/charges/{}/**", "free", "object"),
    R("charges", "* /v1/charges/{}", "free", "object"),
    R("refunds", "POST /v1/refunds", "refund", "refund_target"),
    R("refunds", "GET /v1/refunds", "free", "charge_filter"),
    R("refunds", "* /v1/refunds/**", "free", "object"),
    R("disputes", "GET /v1/disputes", "free", "charge_filter"),
    R("disputes", "* /v1/disputes/**", "free", "object"),
    # ---- payment intents ------------------------------------------------------------------------------
    R("payment intents", "POST /v1/payment_intents", "pi_create", "param"),
    R("payment intents", "POST /v1/payment_intents/{}/confirm", "pi_confirm", "object"),
    R("payment intents", "POST /v1/payment_intents/{}/capture", "pi_capture", "object"),
    R(
        "payment intents",
        "POST /v1/payment_intents/{}/apply_customer_balance",
        "unpriced",
        "object",
        "applying the customer's cash balance pays the intent now; Tollgate does not price cash balances",
    ),
    R(
        "payment intents",
        "POST /v1/payment_intents/{}/verify_microdeposits",
        "unpriced",
        "object",
        "verifying microdeposits lets the pending bank debit of the intent proceed; Tollgate does not price it",
    ),
    R("payment intents", "GET /v1/payment_intents/search", "free", "unknown"),
    R("payment intents", "GET /v1/payment_intents", "free", "list"),
    # update, cancel, increment_authorization (an authorisation only: its capture is priced)
    R("payment intents", "* /v1/payment_intents/**", "free", "object"),
    # ---- payouts, transfers, top-ups, balance, application fees ---------------------------------------
    R("payouts", "POST /v1/payouts", "amount"),
    R("payouts", "POST /v1/payouts/{}/reverse", "object_amount"),
    R("payouts", "GET /v1/payouts", "free", "account_list"),
    R("payouts", "* /v1/payouts/**"),
    R("transfers", "POST /v1/transfers", "amount"),
    R("transfers", "POST /v1/transfers/{}/reversals", "transfer_reversal"),
    R("transfers", "GET /v1/transfers", "free", "account_list"),
    R("transfers", "* /v1/transfers/**"),
    R("top-ups", "POST /v1/topups", "amount"),
    R("top-ups", "GET /v1/topups", "free", "account_list"),
    R("top-ups", "* /v1/topups/**"),
    R("application fees", "POST /v1/application_fees/{}/refund", "fee_refund"),
    R("application fees", "POST /v1/application_fees/{}/refunds", "fee_refund"),
    R("application fees", "* /v1/application_fees**", "free", "account_list"),
    R("balance", "GET /v1/balance_transactions**", "free", "account_list"),
    R("balance", "* /v1/balance**"),
    # ---- customers ------------------------------------------------------------------------------------
    R("customers", "POST /v1/customers/{}/balance_transactions", "signed_amount", "customer_path"),
    R("customers", "POST /v1/customers", "customer_write", "none"),
    R("customers", "POST /v1/customers/{}", "customer_write", "customer_path"),
    R("customers", "GET /v1/customers", "free", "unknown"),
    R("customers", "GET /v1/customers/search", "free", "unknown"),
    R("customers", "* /v1/customers/{}**", "free", "customer_path"),
    R(
        "test helpers",
        "POST /v1/test_helpers/customers/{}/fund_cash_balance",
        "unpriced",
        "customer_path",
        _TEST_MONEY,
    ),
    # ---- billing: invoices, subscriptions, quotes, credit notes ---------------------------------------
    R("invoices", "POST /v1/invoices", "invoice_create", "param"),
    R("invoices", "POST /v1/invoices/create_preview", "free", "param"),
    R("invoices", "POST /v1/invoices/{}", "invoice_update", "object"),
    R("invoices", "POST /v1/invoices/{}/pay", "invoice_pay", "object"),
    R("invoices", "POST /v1/invoices/{}/finalize", "invoice_finalize", "object"),
    R("invoices", "GET /v1/invoices/search", "free", "unknown"),
    R("invoices", "GET /v1/invoices", "free", "list"),
    # send, void, mark_uncollectible, lines, attach_payment (of a payment priced on its own)
    R("invoices", "* /v1/invoices/**", "free", "object"),
    R("invoices", "GET /v1/invoice_payments**", "free", "unknown"),
    R("invoices", "* /v1/invoice_rendering_templates**"),
    R("invoice items", "POST /v1/invoiceitems", "free", "param"),  # billed with an invoice, priced there
    R("invoice items", "GET /v1/invoiceitems", "free", "list"),
    R("invoice items", "* /v1/invoiceitems/**", "free", "object"),
    R("credit notes", "POST /v1/credit_notes", "credit_note", "ref:invoice"),
    R("credit notes", "GET /v1/credit_notes/preview**", "free", "ref:invoice"),
    R("credit notes", "GET /v1/credit_notes", "free", "list"),
    R("credit notes", "* /v1/credit_notes/**", "free", "object"),
    R("subscriptions", "POST /v1/subscriptions", "sub_create", "param"),
    R("subscriptions", "POST /v1/subscriptions/{}", "sub_update", "object"),
    R("subscriptions", "DELETE /v1/subscriptions/{}", "sub_cancel", "object"),
    R("subscriptions", "POST /v1/subscriptions/{}/resume", "sub_resume", "object"),
    R(
        "subscriptions",
        "POST /v1/subscriptions/{}/migrate",
        "unpriced",
        "object",
        "migrating a subscription to flexible billing can invoice it; Tollgate cannot price it",
    ),
    R("subscriptions", "GET /v1/subscriptions/search", "free", "unknown"),
    R("subscriptions", "GET /v1/subscriptions", "free", "list"),
    R("subscriptions", "* /v1/subscriptions/**", "free", "object"),  # pause, discount removal
    R("subscription items", "POST /v1/subscription_items", "sub_item", "ref:subscription"),
    R("subscription items", "GET /v1/subscription_items", "free", "ref:subscription"),
    R("subscription items", "POST /v1/subscription_items/{}", "sub_item", "unknown"),
    R("subscription items", "DELETE /v1/subscription_items/{}", "sub_item", "unknown"),
    R("subscription items", "* /v1/subscription_items/**", "free", "unknown"),
    R(
        "subscription schedules",
        "POST /v1/subscription_schedules",
        "unpriced",
        "param",
        "a schedule that starts now bills its first phase; Tollgate cannot price phases",
    ),
    R(
        "subscription schedules",
        "POST /v1/subscription_schedules/{}",
        "unpriced",
        "object",
        "changing a schedule's phases can bill now; Tollgate cannot price phases",
    ),
    R("subscription schedules", "POST /v1/subscription_schedules/{}/cancel", "sub_cancel", "object"),
    R("subscription schedules", "GET /v1/subscription_schedules", "free", "list"),
    R("subscription schedules", "* /v1/subscription_schedules/**", "free", "object"),  # release
    R(
        "quotes",
        "POST /v1/quotes/{}/accept",
        "unpriced",
        "object",
        "accepting a quote creates the invoice or subscription it describes and can charge it now; "
        "Tollgate cannot price it",
    ),
    R("quotes", "POST /v1/quotes", "free", "param"),
    R("quotes", "GET /v1/quotes", "free", "list"),
    R("quotes", "* /v1/quotes/**", "free", "object"),
    R(
        "credit grants",
        "POST /v1/billing/credit_grants",
        "credit_grant",
        "param",
    ),
    R("credit grants", "GET /v1/billing/credit_grants", "free", "list"),
    R("credit grants", "* /v1/billing/credit_grants/**", "free", "object"),
    R("credit grants", "GET /v1/billing/credit_balance**", "free", "param"),
    R("billing usage", "POST /v1/billing/meter_event**", "free", "unknown"),  # usage billed at renewal
    R("billing", "* /v1/billing/**"),
    R("billing", "POST /v1/billing_portal/sessions", "free", "param"),
    R("billing", "* /v1/billing_portal/**"),
    # ---- catalog: nothing here moves money ----------------------------------------------------------------
    R("catalog", "* /v1/products**"),
    R("catalog", "* /v1/prices**"),
    R("catalog", "* /v1/plans**"),
    R("catalog", "* /v1/coupons**"),
    R("catalog", "* /v1/promotion_codes**"),
    R("catalog", "* /v1/shipping_rates**"),
    R("catalog", "* /v1/tax_rates**"),
    R("catalog", "* /v1/tax_codes**"),
    R("catalog", "* /v1/product_catalog/**"),
    R("catalog", "* /v1/entitlements/features**"),
    R("catalog", "* /v1/entitlements/active_entitlements**", "free", "param"),
    # ---- payment methods, setup, checkout: a customer must still pay ----------------------------------
    R("payment methods", "POST /v1/payment_methods/{}/attach", "free", "param"),
    R("payment methods", "POST /v1/payment_methods", "free", "optional_param"),
    R("payment methods", "GET /v1/payment_methods", "free", "list"),
    R("payment methods", "* /v1/payment_methods/**", "free", "object"),
    R("payment methods", "* /v1/payment_method_configurations**"),
    R("payment methods", "* /v1/payment_method_domains**"),
    R("payment methods", "* /v1/apple_pay/**"),
    R("payment methods", "GET /v1/mandates/**", "free", "unknown"),
    R("payment methods", "GET /v1/confirmation_tokens/**", "free", "unknown"),
    R("payment methods", "POST /v1/tokens", "free", "optional_param"),
    R("payment methods", "GET /v1/tokens/**", "free", "unknown"),
    R("payment methods", "POST /v1/sources"),
    R("payment methods", "* /v1/sources/**", "free", "object"),
    R("setup intents", "POST /v1/setup_intents", "free", "param"),
    R("setup intents", "GET /v1/setup_intents", "free", "list"),
    R("setup intents", "* /v1/setup_intents/**", "free", "object"),
    R("setup intents", "GET /v1/setup_attempts", "free", "unknown"),
    R("checkout", "POST /v1/checkout/sessions", "free", "param"),
    R("checkout", "GET /v1/checkout/sessions", "free", "list"),
    R("checkout", "* /v1/checkout/sessions/**", "free", "object"),
    R("checkout", "* /v1/payment_links**"),
    R("checkout", "POST /v1/customer_sessions", "free", "param"),
    R("checkout", "POST /v1/ephemeral_keys", "free", "param"),
    R("checkout", "DELETE /v1/ephemeral_keys/{}", "free", "unknown"),
    R("checkout", "* /v1/three_d_secure/**", "free", "unknown"),
    # ---- files ------------------------------------------------------------------------------------------
    R("files", "POST /v1/files"),
    R("files", "* /v1/files**", "free", "unknown"),
    R("files", "POST /v1/file_links", "free", "unknown"),  # a link to any file, evidence of any customer
    R("files", "* /v1/file_links**", "free", "unknown"),
    # ---- Connect ------------------------------------------------------------------------------------------
    R(
        "connect",
        "POST /v1/accounts/{}/external_accounts**",
        "unpriced",
        "account",
        "a new or changed bank account receives the connected account's automatic payouts; Tollgate "
        "cannot price them (deleting one is free)",
    ),
    R("connect", "POST /v1/accounts/{}", "account_update", "account"),
    R("connect", "* /v1/accounts/{}**", "free", "account"),
    R("connect", "* /v1/accounts"),
    R("connect", "GET /v1/account"),
    R("connect", "POST /v1/account_links"),
    R("connect", "POST /v1/account_sessions"),
    R(
        "connect",
        "POST /oauth/**",
        "unpriced",
        "none",
        "OAuth calls go to connect.stripe.com, which the gateway does not serve",
    ),
    # ---- Issuing and Treasury: money leaves through cards and bank flows ---------------------------------
    R(
        "issuing",
        "POST /v1/issuing/authorizations/{}/approve",
        "unpriced",
        "none",
        "approving an authorization lets a card spend go through; Tollgate does not price Issuing spend "
        "(decline is free)",
    ),
    R("issuing", "* /v1/issuing/**"),  # cards, cardholders, disputes, tokens: no money moves by these calls
    R("treasury", "POST /v1/treasury/outbound_payments", "amount"),
    R("treasury", "POST /v1/treasury/outbound_transfers", "amount"),
    R("treasury", "POST /v1/treasury/inbound_transfers", "amount"),
    R(
        "treasury",
        "POST /v1/treasury/credit_reversals",
        "unpriced",
        "none",
        "reversing a received credit sends its amount back; Tollgate does not read received credits to price it",
    ),
    R(
        "treasury",
        "POST /v1/treasury/debit_reversals",
        "unpriced",
        "none",
        "reversing a received debit returns its amount; Tollgate does not read received debits to price it",
    ),
    R("treasury", "* /v1/treasury/**"),  # financial accounts, features, cancels, reads
    # ---- terminal -------------------------------------------------------------------------------------------
    R(
        "terminal",
        "POST /v1/terminal/readers/{}/process_payment_intent",
        "unpriced",
        "none",
        "the reader charges the card presented to it; Tollgate does not price in-person payments",
    ),
    R(
        "terminal",
        "POST /v1/terminal/readers/{}/confirm_payment_intent",
        "unpriced",
        "none",
        "confirming on the reader charges the collected card; Tollgate does not price in-person payments",
    ),
    R(
        "terminal",
        "POST /v1/terminal/readers/{}/refund_payment",
        "unpriced",
        "none",
        "the reader refunds the card presented; refund through POST /v1/refunds, which Tollgate prices",
    ),
    R("terminal", "* /v1/terminal/**"),
    # ---- everything else that moves money ------------------------------------------------------------------
    R(
        "climate",
        "POST /v1/climate/orders",
        "unpriced",
        "none",
        "a Climate order buys carbon removal from the balance; Tollgate does not price Climate orders",
    ),
    R("climate", "* /v1/climate/**"),
    R(
        "forwarding",
        "POST /v1/forwarding/requests",
        "unpriced",
        "unknown",
        "forwarding card details to a third party lets that party charge them; Tollgate cannot price it",
    ),
    R("forwarding", "GET /v1/forwarding/**", "free", "unknown"),
    # ---- reporting and account settings: no money, but account-wide data -----------------------------
    R("account data", "* /v1/events**", "free", "account_list"),
    R("account data", "* /v1/reporting/**", "free", "account_list"),
    R("account data", "* /v1/sigma/**", "free", "account_list"),
    R("account data", "* /v1/radar/**", "free", "unknown"),
    R("account data", "* /v1/reviews**", "free", "unknown"),
    R("account data", "* /v1/payment_records**", "free", "unknown"),  # records of payments made elsewhere
    R("account data", "* /v1/payment_attempt_records**", "free", "unknown"),
    R("account data", "* /v1/identity/**", "free", "unknown"),
    R("account data", "* /v1/financial_connections/**", "free", "unknown"),
    R("account data", "POST /v1/tax/calculations", "free", "param"),
    R("account data", "* /v1/tax/**", "free", "unknown"),
    R("account data", "* /v1/tax_ids**", "free", "unknown"),
    # an endpoint receives every event, every customer's among them
    R("account data", "* /v1/webhook_endpoints**", "free", "account_list"),
    R("account data", "* /v1/apps/**"),
    R("account data", "* /v1/country_specs**"),
    R("account data", "* /v1/exchange_rates**"),
    # ---- test mode ----------------------------------------------------------------------------------------
    R("test helpers", "POST /v1/test_helpers/issuing/authorizations**", "unpriced", "none", _TEST_MONEY),
    R("test helpers", "POST /v1/test_helpers/issuing/transactions/**", "unpriced", "none", _TEST_MONEY),
    R("test helpers", "POST /v1/test_helpers/treasury/received_**", "unpriced", "none", _TEST_MONEY),
    R("test helpers", "POST /v1/test_helpers/treasury/**/succeed", "unpriced", "none", _TEST_MONEY),
    R("test helpers", "POST /v1/test_helpers/treasury/**/post", "unpriced", "none", _TEST_MONEY),
    R("test helpers", "* /v1/test_helpers/**", "free", "unknown"),  # clocks, shipping, state changes
    # ---- v2 -------------------------------------------------------------------------------------------------
    R(
        "v2 money management",
        "POST /v2/money_management/outbound_payments",
        "unpriced",
        "none",
        "an outbound payment sends money to a recipient; " + _V2_UNREAD,
    ),
    R(
        "v2 money management",
        "POST /v2/money_management/inbound_transfers",
        "unpriced",
        "none",
        "an inbound transfer debits a bank account; " + _V2_UNREAD,
    ),
    R(
        "v2 money management",
        "POST /v2/money_management/payout_intents**",
        "unpriced",
        "none",
        "a payout intent sends money out when confirmed; " + _V2_UNREAD,
    ),
    R("v2 writes", "POST /v2/**", "unpriced", "none", _V2_UNREAD),
    R("v2", "GET /v2/core/accounts/{}**", "free", "account"),
    R("v2", "DELETE /v2/core/accounts/{}**", "free", "account"),
    R("v2", "GET /v2/core/events**", "free", "account_list"),
    R("v2", "GET /v2/money_management/**", "free", "account_list"),
    R("v2", "* /v2/**", "free", "unknown"),
)


@record
class Classified:
    method: str
    template: str  # placeholders renamed: the first {id} ({customer}, {account}), later ones singular
    name: str
    api: str
    family: str
    pricing: str
    scope: str
    reason: str


class Unclassified(LookupError):
    """An SDK route no rule covers: a person must classify it."""


def shape(path: str) -> str:
    """'/v1/charges/{charge}/capture' → '/v1/charges/{}/capture' (what rules match)."""
    return re.sub(r"\{\w+\}", "{}", path)


def template(path: str) -> str:
    """The SDK's placeholder names, made regular: the first is {customer} under /v1/customers, {account}
    under an accounts path, else {id}; a later one is named after the collection before it."""
    segments = path.split("/")
    out: list[str] = []
    first = True
    for i, seg in enumerate(segments):
        if not (seg.startswith("{") and seg.endswith("}")):
            out.append(seg)
            continue
        before = segments[i - 1]
        if first:
            name = {"customers": "customer", "accounts": "account"}.get(before, "id")
            first = False
        else:
            name = _singular(before)
        out.append("{" + name + "}")
    return "/".join(out)


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else word + "_id"


def classify(method: str, path: str, name: str, api: str) -> Classified:
    s = shape(path)
    for rule in RULES:
        if rule.matches(method, s):
            if rule.pricing == "unpriced" and not rule.reason:
                raise Unclassified(f"rule {rule.pattern!r} refuses {method} {path} without saying why")
            return Classified(
                method, template(path), name, api, rule.family, rule.pricing, rule.scope, rule.reason
            )
    raise Unclassified(f"no rule classifies {method} {path} ({name}): add one to RULES")


# Routes the SDK does not call but agents' code still sends (older stripe-python, curl scripts).
LEGACY: tuple[tuple[str, str, str], ...] = (
    ("POST", "/v1/charges/{charge}/refunds", "charges.refunds.create"),
    ("POST", "/v1/charges/{charge}/refund", "charges.refund"),
    ("POST", "/v1/application_fees/{id}/refund", "application_fees.refund"),
)


def table(sdk: Iterable[tuple[str, str, str, str]]) -> list[Classified]:
    """(method, path, name, api) of the SDK, plus LEGACY, classified and sorted."""
    rows = {(m, p): (n, a) for m, p, n, a in sdk}
    for m, p, n in LEGACY:
        rows.setdefault((m, p), (n, "api"))
    return sorted(
        (classify(m, p, n, a) for (m, p), (n, a) in rows.items()), key=lambda c: (c.template, c.method)
    )


COLUMNS = ("method", "template", "name", "api", "family", "pricing", "scope", "reason")


def render_csv(rows: Iterable[Classified], sdk_version: str) -> str:
    """routes.csv: one line per route, as `tollgate dev stripe-routes` writes it."""
    out = io.StringIO()
    out.write(f"# Generated by `tollgate dev stripe-routes` from stripe-python {sdk_version}; do not edit.\n")
    out.write("# Classification rules: src/tollgate/vendors/stripe/catalog.py.\n")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    seen: set[tuple[str, str]] = set()
    for r in rows:
        if (r.method, r.template) in seen:
            raise Unclassified(f"{r.method} {r.template} is listed twice")
        seen.add((r.method, r.template))
        w.writerow([getattr(r, c) for c in COLUMNS])
    return out.getvalue()


def parse_csv(text: str) -> list[Classified]:
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    reader = csv.DictReader(lines)
    assert tuple(reader.fieldnames or ()) == COLUMNS, reader.fieldnames
    return [Classified(**row) for row in reader]


def summary(rows: Iterable[Classified]) -> str:
    """The README's table: per family, how many routes each pricing and scope rule covers."""
    families: dict[str, list[Classified]] = {}
    for r in rows:
        families.setdefault(r.family, []).append(r)
    lines = ["| family | routes | pricing rules (routes) | scope rules (routes) |", "|---|---|---|---|"]
    for family, rs in sorted(families.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(
            f"| {family} | {len(rs)} | {_counts(r.pricing for r in rs)} | {_counts(r.scope for r in rs)} |"
        )
    return "\n".join(lines)


def _counts(values: Iterable[str]) -> str:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return ", ".join(f"`{k}` {n}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
