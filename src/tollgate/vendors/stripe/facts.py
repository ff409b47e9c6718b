"""Stripe call → Facts: how much money it moves and whom it touches. Pure.

When the answer lies in an object only Stripe has (the charge behind a full refund, the customer of
a payment intent), this returns a Need naming the object; the adapter reads it and asks again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tollgate.money import Money
from tollgate.policy.rules import ParamValue
from tollgate.vendors.base import Endpoint, Facts, Found, Invalid, Need, ObjectRef, Unpriced
from tollgate.vendors.stripe.endpoints import ID, collection_of

_INT = re.compile(r"^[0-9]{1,15}$")
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
    }
)


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
_CHECKED_SCOPES = frozenset({"param", "list", "customer_path", "object", "refund_target", "charge_filter"})


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
        return Unpriced(
            f"{ep.method} {ep.template} may move money in ways Tollgate cannot price, so it is refused"
        )
    if p == "amount":
        return Money.minor(_req(r.amount("amount", required=True)), r.currency())
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
    if p == "sub_update":
        changed = sorted({k.split("[", 1)[0] for k in r.params} - _SUB_SAFE)
        if changed:
            return Unpriced(
                f"changing {', '.join(changed)} on a subscription can bill the customer; Tollgate cannot price it"
            )
        return None
    if p == "sub_cancel":
        if r.text("invoice_now") == "true":
            return Unpriced(
                "cancelling with invoice_now=true bills pending usage now; Tollgate cannot price it"
            )
        return None
    raise AssertionError(f"unknown pricing {p!r}")


def _price_refund(r: _Reader) -> Money:
    explicit = r.amount("amount", required=False)
    charge = _refund_charge(r, fresh=explicit is None)
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
    if s == "none":
        return set(), None, False
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
