"""Stripe call → Facts: how much money it moves and whom it touches. Pure.

When the answer lies in an object only Stripe has (the charge behind a full refund, the customer of
a payment intent), this returns a Need naming the object; the adapter reads it and asks again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tollgate.money import Money
from tollgate.policy.rules import ParamValue
from tollgate.vendors.base import Endpoint, Facts, Found, Invalid, Need, ObjectRef, Unpriced
from tollgate.vendors.stripe.endpoints import ID, collection_of

_INT = re.compile(r"^[0-9]{1,15}$")
_SIGNED_INT = re.compile(r"^-?[0-9]{1,15}$")
_CURRENCY = re.compile(r"^[a-zA-Z]{3}$")
_ID_COLLECTION = {
    "ch": "charges",
    "py": "charges",
    "pi": "payment_intents",
    "in": "invoices",
    "re": "refunds",
    "pyr": "refunds",
    "dp": "disputes",
    "du": "disputes",
    "sub": "subscriptions",
    "si": "subscription_items",
    "seti": "setup_intents",
    "pm": "payment_methods",
    "cs": "checkout/sessions",
    "cn": "credit_notes",
    "ii": "invoiceitems",
    "qt": "quotes",
}
# Subscription fields whose change bills nothing now or later.
_SUB_SAFE = frozenset(
    {
        "metadata",
        "description",
        "cancel_at_period_end",
        "cancel_at",
        "cancellation_details",
        "pause_collection",
        "expand",
        # discounts make later invoices smaller; no invoice is made now
        "coupon",
        "discounts",
        "promotion_code",
        "proration_behavior",
    }
)
# Subscription item changes whose prorations wait for the next invoice instead of being billed now.
_PRORATE_LATER = ("create_prorations", "none")


# Under a customer scope, `expand` may follow only these references: each leads from an object of one
# customer to another object of that same customer (its charge, invoice, payment method, …), so an
# in-scope object expands only into in-scope data. Anything else (a transfer, an application fee, a
# connected account, a balance transaction's source) could reach other customers and is refused.
_EXPAND_SAME_CUSTOMER = frozenset(
    {
        "customer",
        "charge",
        "charges",
        "latest_charge",
        "payment_intent",
        "invoice",
        "latest_invoice",
        "subscription",
        "subscriptions",
        "payment_method",
        "default_payment_method",
        "default_source",
        "source",
        "sources",
        "refunds",
        "dispute",
        "disputes",
        "review",
        "balance_transaction",
        "data",  # the items of a list being expanded
    }
)
# Routes whose own object (or list filter) is checked against the customer scope: only they may expand.
_CHECKED_SCOPES = frozenset(
    {
        "param",
        "list",
        "customer_path",
        "object",
        "refund_target",
        "charge_filter",
        "ref:invoice",
        "ref:subscription",
    }
)


class _Missing(Exception):
    """Internal: an object must be read first (turned into Need at the edge of this module)."""

    def __init__(self, ref: ObjectRef, fresh: bool) -> None:
        self.ref, self.fresh = ref, fresh


class _Bad(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        self.message, self.param = message, param


def facts(
    endpoint: Endpoint,
    params: Mapping[str, ParamValue],
    headers: Mapping[str, str],
    found: Found,
    scope_customers: bool,
) -> Facts | Need | Invalid | Unpriced:
    reader = _Reader(params, found)
    try:
        cost = _price(endpoint, reader)
        if isinstance(cost, Unpriced):
            return cost
        customers, unscoped, related = _scope(endpoint, reader, resolve=scope_customers)
        if scope_customers and unscoped is None:
            unscoped = _expand_out_of_scope(endpoint, params)
            related = related or unscoped is not None
    except _Missing as m:
        return Need((m.ref,), fresh=m.fresh)
    except _Bad as b:
        return Invalid(b.message, b.param)
    return Facts(
        cost=cost,
        customers=frozenset(customers),
        unscoped=unscoped,
        customer_related=related,
    )


class _Reader:
    def __init__(self, params: Mapping[str, ParamValue], found: Found) -> None:
        self.params, self.found = params, found

    def text(self, name: str) -> str | None:
        v = self.params.get(name)
        if isinstance(v, list):
            raise _Bad(f"parameter {name!r} must be a single value", name)
        return v

    def id(self, name: str) -> str | None:
        """An object id parameter, which must be in Stripe's id grammar (it may be read with the real key)."""
        v = self.text(name)
        if v is not None and not ID.match(v):
            raise _Bad(
                f"parameter {name!r} must be a Stripe object id such as ch_3Mxyz, not {v[:40]!r}", name
            )
        return v

    def amount(self, name: str, *, required: bool) -> int | None:
        v = self.text(name)
        if v is None:
            if required:
                raise _Bad(f"parameter {name!r} is required", name)
            return None
        if not _INT.match(v):
            raise _Bad(f"parameter {name!r} must be a whole number of the currency's minor unit", name)
        return int(v)

    def currency(self, name: str = "currency") -> str:
        v = self.text(name)
        if v is None or not _CURRENCY.match(v):
            raise _Bad(f"parameter {name!r} must be a three-letter currency code", name)
        return v.lower()

    def obj(self, collection: str, oid: str, *, fresh: bool = False) -> Mapping[str, Any]:
        ref = ObjectRef(collection, oid)
        got = self.found.get(ref, fresh=fresh)
        if got is None:
            raise _Missing(ref, fresh)
        return got


def _price(ep: Endpoint, r: _Reader) -> Money | Unpriced | None:
    p = ep.pricing
    if p == "free":
        return None
    if p == "unpriced":
        why = ep.reason or "it may move money in ways Tollgate cannot price"
        return Unpriced(f"{ep.method} {ep.template} is refused: {why}")
    if p == "amount":
        return Money.minor(_req(r.amount("amount", required=True)), r.currency())
    if p in _PRICERS:
        return _PRICERS[p](ep, r)
    if p == "charge":
        amount, currency = _req(r.amount("amount", required=True)), r.currency()
        return None if r.text("capture") == "false" else Money.minor(amount, currency)
    if p == "pi_create":
        amount, currency = _req(r.amount("amount", required=True)), r.currency()
        moves = r.text("confirm") == "true" and r.text("capture_method") != "manual"
        return Money.minor(amount, currency) if moves else None
    if p == "pi_confirm":
        pi = r.obj("payment_intents", ep.path_ids["id"], fresh=True)
        method = r.text("capture_method") or pi.get("capture_method")
        return None if method == "manual" else Money.minor(_int(pi, "amount"), _cur(pi))
    if p == "pi_capture":
        explicit = r.amount("amount_to_capture", required=False)
        pi = r.obj("payment_intents", ep.path_ids["id"], fresh=explicit is None)
        amount = explicit if explicit is not None else _int(pi, "amount_capturable")
        return Money.minor(amount, _cur(pi))
    if p == "charge_capture":
        explicit = r.amount("amount", required=False)
        ch = r.obj("charges", ep.path_ids["id"], fresh=explicit is None)
        amount = explicit if explicit is not None else _int(ch, "amount") - _int(ch, "amount_captured", 0)
        return Money.minor(amount, _cur(ch))
    if p == "refund":
        return _price_refund(r)
    if p == "invoice_pay":
        inv = r.obj("invoices", ep.path_ids["id"], fresh=True)
        return Money.minor(_int(inv, "amount_remaining"), _cur(inv))
    if p == "sub_cancel":
        if r.text("invoice_now") == "true":
            return Unpriced(
                "cancelling with invoice_now=true bills pending usage now; Tollgate cannot price it"
            )
        return None
    raise AssertionError(f"unknown pricing {p!r}")


# ---- pricing rules beyond the request's own amount ----------------------------------------------------


def _left(obj: Mapping[str, Any], total: str, used: str) -> int:
    return max(_int(obj, total) - _int(obj, used, 0), 0)


def _charge_refund(ep: Endpoint, r: _Reader) -> Money:
    explicit = r.amount("amount", required=False)
    return _refund_of(r.obj("charges", ep.path_ids["id"], fresh=explicit is None), explicit)


def _object_amount(ep: Endpoint, r: _Reader) -> Money:
    obj = r.obj(collection_of(ep.template), ep.path_ids["id"], fresh=True)
    return Money.minor(_int(obj, "amount"), _cur(obj))


def _reversal(collection: str, used: str) -> Callable[[Endpoint, _Reader], Money]:
    """A transfer reversal or application fee refund: `amount`, else what is left of the object."""

    def price(ep: Endpoint, r: _Reader) -> Money:
        explicit = r.amount("amount", required=False)
        obj = r.obj(collection, ep.path_ids["id"], fresh=explicit is None)
        return Money.minor(explicit if explicit is not None else _left(obj, "amount", used), _cur(obj))

    return price


def _signed_amount(ep: Endpoint, r: _Reader) -> Money:
    # A customer balance transaction: a credit (negative) lowers what later invoices collect, a debit
    # raises it; either way the amount is money the customer will or will not pay.
    v = r.text("amount")
    if v is None or not _SIGNED_INT.match(v):
        raise _Bad("parameter 'amount' must be a whole number of the currency's minor unit", "amount")
    return Money.minor(abs(int(v)), r.currency())


def _credit_note(ep: Endpoint, r: _Reader) -> Money | Unpriced:
    if any(k == "refunds" or k.startswith("refunds[") for k in r.params):
        return Unpriced(
            "a credit note with refunds[] links or creates refunds Tollgate cannot price here; "
            "send refund_amount, or refund through POST /v1/refunds"
        )
    parts = [r.amount(k, required=False) for k in ("refund_amount", "credit_amount", "out_of_band_amount")]
    if all(v is None for v in parts):
        return Unpriced(
            "a credit note without refund_amount, credit_amount or out_of_band_amount lets Stripe choose "
            "how the money goes back; name one of them"
        )
    invoice = r.id("invoice")
    if not invoice:
        raise _Bad("a credit note needs 'invoice'", "invoice")
    inv = r.obj("invoices", invoice)
    # out_of_band_amount records money returned outside Stripe: nothing moves through this call.
    return Money.minor((parts[0] or 0) + (parts[1] or 0), _cur(inv))


def _credit_grant(ep: Endpoint, r: _Reader) -> Money:
    value = _req(r.amount("amount[monetary][value]", required=True))
    return Money.minor(value, r.currency("amount[monetary][currency]"))


def _invoice_create(ep: Endpoint, r: _Reader) -> Unpriced | None:
    if r.text("auto_advance") == "true" and r.text("collection_method") != "send_invoice":
        return Unpriced(
            "an invoice created with auto_advance=true is finalized and charged by Stripe without a "
            "further call; leave auto_advance false and finalize or pay it with calls Tollgate prices"
        )
    return None


def _invoice_update(ep: Endpoint, r: _Reader) -> Unpriced | None:
    if r.text("auto_advance") == "true" and r.text("collection_method") != "send_invoice":
        return Unpriced(
            "turning auto_advance on lets Stripe finalize and charge the invoice without a further call; "
            "finalize or pay it with calls Tollgate prices"
        )
    return None


def _invoice_finalize(ep: Endpoint, r: _Reader) -> Money | None:
    inv = r.obj("invoices", ep.path_ids["id"], fresh=True)
    auto = r.text("auto_advance")
    advances = auto == "true" if auto is not None else inv.get("auto_advance") is True
    if inv.get("collection_method") == "send_invoice" or not advances:
        return None  # the customer pays it, or nothing happens until a further (priced) call
    # Finalized with automatic collection, Stripe charges the invoice by itself.
    return Money.minor(_int(inv, "amount_remaining", _int(inv, "amount_due")), _cur(inv))


def _sub_create(ep: Endpoint, r: _Reader) -> Unpriced | None:
    if r.text("collection_method") == "send_invoice" or r.text("payment_behavior") == "default_incomplete":
        return None  # the customer pays the invoice, or the agent confirms its payment intent (priced)
    trial = (r.text("trial_period_days") or "0") not in ("0", "") or r.text("trial_end") not in (None, "now")
    if trial and not any(k.startswith("add_invoice_items") for k in r.params):
        return None  # the first invoice is a trial's, for nothing
    return Unpriced(
        "creating a subscription charges its first invoice now, for an amount only Stripe computes; send "
        "payment_behavior=default_incomplete (then confirm its payment intent, which Tollgate prices) or "
        "start it with a trial"
    )


def _sub_update(ep: Endpoint, r: _Reader) -> Unpriced | None:
    changed = {k.split("[", 1)[0] for k in r.params} - _SUB_SAFE
    if r.text("trial_end") not in (None, "now"):
        changed.discard("trial_end")  # a trial that ends later bills nothing now
    if r.text("proration_behavior") == "always_invoice":
        changed.add("proration_behavior=always_invoice")
    if changed:
        return Unpriced(
            f"changing {', '.join(sorted(changed))} on a subscription can bill the customer now (a new price or "
            "interval invoices immediately); Tollgate cannot price it. Change quantities through "
            "/v1/subscription_items with proration_behavior=create_prorations, which bills at the next renewal"
        )
    return None


def _sub_item(ep: Endpoint, r: _Reader) -> Unpriced | None:
    if r.text("proration_behavior") not in _PRORATE_LATER:
        return Unpriced(
            "a subscription item change can invoice prorations now; send proration_behavior=create_prorations "
            "(billed at the next renewal) or none"
        )
    if (
        ep.method == "POST"
        and ep.path_ids
        and any(k.split("[", 1)[0] in ("price", "plan", "price_data") for k in r.params)
    ):
        return Unpriced("changing an item's price can change the billing interval, which invoices now")
    if r.text("payment_behavior") == "pending_if_incomplete":
        return Unpriced("payment_behavior=pending_if_incomplete invoices the change now")
    return None


def _customer_write(ep: Endpoint, r: _Reader) -> Unpriced | None:
    if "balance" in r.params:
        return Unpriced(
            "setting a customer's balance directly credits or debits their next invoices by an amount "
            "Tollgate would have to compute; send POST /v1/customers/{customer}/balance_transactions, "
            "which Tollgate prices"
        )
    return None


def _account_update(ep: Endpoint, r: _Reader) -> Unpriced | None:
    for key in r.params:
        if key.startswith(("external_account", "settings[payouts]")):
            return Unpriced(
                f"{key.split('[', 1)[0] if key.startswith('external') else 'settings[payouts]'} redirects or "
                "reschedules the connected account's automatic payouts; Tollgate cannot price them"
            )
    return None


def _sub_resume(ep: Endpoint, r: _Reader) -> Unpriced | None:
    if r.text("billing_cycle_anchor") == "unchanged" and r.text("proration_behavior") != "always_invoice":
        return None
    return Unpriced(
        "resuming a subscription with billing_cycle_anchor=now (the default) invoices it now; send "
        "billing_cycle_anchor=unchanged"
    )


_PRICERS: dict[str, Callable[[Endpoint, _Reader], Money | Unpriced | None]] = {
    "charge_refund": _charge_refund,
    "object_amount": _object_amount,
    "transfer_reversal": _reversal("transfers", "amount_reversed"),
    "fee_refund": _reversal("application_fees", "amount_refunded"),
    "signed_amount": _signed_amount,
    "credit_note": _credit_note,
    "credit_grant": _credit_grant,
    "invoice_create": _invoice_create,
    "invoice_update": _invoice_update,
    "invoice_finalize": _invoice_finalize,
    "sub_create": _sub_create,
    "sub_update": _sub_update,
    "sub_item": _sub_item,
    "sub_resume": _sub_resume,
    "customer_write": _customer_write,
    "account_update": _account_update,
}


def _price_refund(r: _Reader) -> Money:
    explicit = r.amount("amount", required=False)
    return _refund_of(_refund_charge(r, fresh=explicit is None), explicit)


def _refund_of(charge: Mapping[str, Any], explicit: int | None) -> Money:
    if explicit is not None:
        return Money.minor(explicit, _cur(charge))
    # A refund without `amount` refunds whatever is left on the charge: read it now, it moves.
    remaining = _int(charge, "amount_captured", _int(charge, "amount")) - _int(charge, "amount_refunded", 0)
    return Money.minor(max(remaining, 0), _cur(charge))


def _refund_charge(r: _Reader, *, fresh: bool) -> Mapping[str, Any]:
    charge_id, pi_id = r.id("charge"), r.id("payment_intent")
    if bool(charge_id) == bool(pi_id):
        raise _Bad("a refund needs exactly one of 'charge' or 'payment_intent'", "charge")
    if charge_id:
        return r.obj("charges", charge_id, fresh=fresh)
    pi = r.obj("payment_intents", str(pi_id), fresh=fresh)
    latest = _id(pi.get("latest_charge")) or _first_charge(pi)
    if not latest and not fresh:
        # A cached intent keeps only its currency (vendor.cacheable): read it for its charge.
        pi = r.obj("payment_intents", str(pi_id), fresh=True)
        latest = _id(pi.get("latest_charge")) or _first_charge(pi)
    if not latest:
        raise _Bad(f"payment intent {pi_id} has no charge to refund", "payment_intent")
    return r.obj("charges", latest, fresh=fresh)


def _first_charge(pi: Mapping[str, Any]) -> str | None:
    charges = pi.get("charges")
    data = charges.get("data") if isinstance(charges, Mapping) else None
    if isinstance(data, list) and data:
        return _id(data[-1])
    return None


def _scope(ep: Endpoint, r: _Reader, *, resolve: bool) -> tuple[set[str], str | None, bool]:
    """(customers touched, why unknown, is customer-related). Objects are read only when `resolve`."""
    s = ep.scope
    if s in ("none", "account"):  # a connected account in the path is checked by accounts()
        return set(), None, False
    if s == "optional_param":
        c = r.id("customer")
        return ({c}, None, True) if c else (set(), None, False)
    if s == "customer_path":
        return {ep.path_ids["customer"]}, None, True
    if s == "account_list":
        return set(), "the list cannot be filtered by customer", True
    if s in ("param", "list"):
        c = r.id("customer")
        if c:
            return {c}, None, True
        why = "the call names no customer" if s == "param" else "the list is not filtered by customer"
        return set(), why, True
    if s == "unknown":
        return set(), f"Tollgate cannot tell which customers {ep.method} {ep.template} touches", True
    if not resolve:
        return set(), None, True
    if s == "refund_target":
        return _customer_of_charge(_refund_charge(r, fresh=False))
    if s == "charge_filter":
        target = r.id("charge") or r.id("payment_intent")
        if not target:
            return set(), "the list is not filtered by charge or payment_intent", True
        return _customer_of(r, target)
    if s == "object":
        return _customer_of(r, ep.path_ids["id"], collection_of(ep.template))
    if s.startswith("ref:"):
        param = s[4:]
        target = r.id(param)
        if not target:
            return set(), f"the call names no {param}", True
        return _customer_of(r, target)
    raise AssertionError(f"unknown scope {s!r}")


def _expand_out_of_scope(ep: Endpoint, params: Mapping[str, ParamValue]) -> str | None:
    """Why this call's `expand` could reach other customers' objects, or None when it cannot."""
    paths = _expand_paths(params)
    if not paths:
        return None
    if ep.scope not in _CHECKED_SCOPES:
        return f"expand on {ep.method} {ep.template} can reach other customers' objects"
    for path in paths:
        outside = [f for f in path.split(".") if f not in _EXPAND_SAME_CUSTOMER]
        if outside:
            return f"expand of {path!r} can reach objects of other customers ({outside[0]!r} is not followed)"
    return None


def _expand_paths(params: Mapping[str, ParamValue]) -> list[str]:
    out: list[str] = []
    for key, value in params.items():
        if key == "expand" or key.startswith("expand["):
            out.extend([value] if isinstance(value, str) else value)
    return out


def _customer_of(r: _Reader, oid: str, collection: str | None = None) -> tuple[set[str], str | None, bool]:
    collection = collection or _ID_COLLECTION.get(oid.split("_", 1)[0])
    if collection is None:
        return set(), f"{oid!r} is not an object Tollgate can scope", True
    obj = r.obj(collection, oid)
    if collection in ("refunds", "disputes"):
        charge = _id(obj.get("charge"))
        if not charge:
            return set(), f"{oid} is not tied to a charge", True
        return _customer_of_charge(r.obj("charges", charge))
    return _customer_of_charge(obj)


def _customer_of_charge(obj: Mapping[str, Any]) -> tuple[set[str], str | None, bool]:
    c = _id(obj.get("customer"))
    if c:
        return {c}, None, True
    return set(), f"{obj.get('id', 'the object')} has no customer", True


def accounts(ep: Endpoint, params: Mapping[str, ParamValue], headers: Mapping[str, str]) -> frozenset[str]:
    """Connected accounts acted on (Stripe-Account, or each account of a Stripe-Context) or paid (a
    transfer's destination)."""
    accounts = set()
    if acct := headers.get("stripe-account"):
        accounts.add(acct)
    if context := headers.get("stripe-context"):
        accounts.update(context.split("/"))
    if ep.name == "transfers.create" and isinstance(dest := params.get("destination"), str):
        accounts.add(dest)
    if ep.scope == "account" and (acct := ep.path_ids.get("account")):
        accounts.add(acct)  # /v1/accounts/{account}/…: the call acts on that connected account
    return frozenset(accounts)


def _id(v: object) -> str | None:
    if isinstance(v, Mapping):
        v = v.get("id")
    return v if isinstance(v, str) and ID.match(v) else None


def _int(obj: Mapping[str, Any], key: str, default: int | None = None) -> int:
    v = obj.get(key, default)
    if v is None:
        v = default
    if not isinstance(v, int) or isinstance(v, bool):
        raise _Bad(f"Stripe returned no usable {key!r} for {obj.get('id', 'the object')}")
    return v


def _cur(obj: Mapping[str, Any]) -> str:
    c = obj.get("currency")
    if not isinstance(c, str):
        raise _Bad(f"Stripe returned no currency for {obj.get('id', 'the object')}")
    return c.lower()


def _req(v: int | None) -> int:
    assert v is not None
    return v
