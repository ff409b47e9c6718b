"""Stripe: everything Tollgate knows about api.stripe.com, behind the Vendor seam. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from tollgate.policy.rules import ParamValue
from tollgate.vendors import form, wire
from tollgate.vendors.base import (
    Delivery,
    Denial,
    Endpoint,
    Facts,
    Found,
    Invalid,
    Need,
    ObjectRef,
    Rendered,
    Settlement,
    Unpriced,
    Vendor,
    post_idempotency_key,
)
from tollgate.vendors.observed import Observed
from tollgate.vendors.stripe import endpoints, errors, outcome, redact, uploads
from tollgate.vendors.stripe import facts as _facts
from tollgate.vendors.stripe import observed as _observed
from tollgate.vendors.stripe.policy import POLICY

_PARAM_ROOT = re.compile(r"^[a-z][a-z0-9_]*$")
# Object fields that never change once set; everything else (amounts refunded, captured) is read fresh.
# An object missing one of them is not cached: a charge's empty customer, say, may be filled in later.
_IMMUTABLE = {
    "charges": ("currency", "customer"),
    "refunds": ("charge", "currency"),
    "disputes": ("charge", "currency"),
    "invoices": ("customer", "currency"),
    "payment_intents": ("currency",),
    "subscriptions": ("customer",),
}


def _check_account_headers(headers: Mapping[str, str]) -> None:
    """`Stripe-Account: acct_…`, or `Stripe-Context` as account ids joined by '/': each account is
    checked against connectedAccounts (facts.accounts). Both at once could name two different accounts."""
    account, context = headers.get("stripe-account"), headers.get("stripe-context")
    if account is not None and context is not None:
        raise wire.Ambiguous("send Stripe-Account or Stripe-Context, not both")
    if account is not None and not endpoints.ACCOUNT_ID.fullmatch(account):
        raise wire.Ambiguous(
            f"Stripe-Account must be one account id such as acct_1Mxyz, not {account[:40]!r}"
        )
    if context is not None and not all(endpoints.ACCOUNT_ID.fullmatch(a) for a in context.split("/")):
        raise wire.Ambiguous(
            f"Stripe-Context must be account ids (acct_…) joined by '/', not {context[:60]!r}"
        )


class StripeVendor(Vendor):
    name = "stripe"
    # File uploads (POST /v1/files) go to a second host: the SDK's "files" base address.
    default_urls = MappingProxyType({"api": "https://api.stripe.com", "files": "https://files.stripe.com"})
    policy = POLICY
    routes = endpoints.ROUTES
    redacted = redact.REDACTED
    captured = _observed.CAPTURED
    account_header = "stripe-account"
    decision_headers = frozenset({"stripe-account", "stripe-context"})

    def observed(self, fields: Mapping[str, object]) -> Observed:
        return _observed.observed(fields)

    def vault_token(self, headers: Mapping[str, str]) -> str | None:
        if (token := wire.bearer_token(headers)) is not None:
            return token
        # `curl -u sk_…:` — the key is the user name, the password is empty.
        user, password = wire.basic_credentials(headers) or ("", "")
        return user if user and not password else None

    def parse_params(self, w: wire.Wire) -> dict[str, ParamValue]:
        # Stripe's v1 API reads form encoding only, with lower-case snake_case names; file uploads, on
        # their own host, multipart (strictly: uploads.py).
        _check_account_headers(w.headers)
        route = endpoints.route(w.method, w.path)
        uploads.check_host(w, route)
        if route is not None and route.name == uploads.ROUTE_NAME:
            return uploads.params(w)
        if w.path.startswith("/v2/") and w.carries_body and w.body:
            raise wire.Ambiguous(
                f"Tollgate does not read /v2 JSON bodies yet, so it cannot judge {w.method} {w.path}; "
                "v2 writes are refused (the route table says why for each)"
            )
        where, data = wire.params_source(w)
        if where == "body":
            wire.check_body_encoding(w, "application/x-www-form-urlencoded", "Stripe")
        return form.nested(form.pairs(data, where), _PARAM_ROOT, where)

    def match(self, method: str, path: str) -> Endpoint:
        return endpoints.match(method, path)

    def accounts(
        self, endpoint: Endpoint, params: Mapping[str, ParamValue], headers: Mapping[str, str]
    ) -> frozenset[str]:
        return _facts.accounts(endpoint, params, headers)

    def facts(
        self,
        endpoint: Endpoint,
        params: Mapping[str, ParamValue],
        headers: Mapping[str, str],
        found: Found,
        scope_customers: bool,
    ) -> Facts | Need | Invalid | Unpriced:
        return _facts.facts(endpoint, params, headers, found, scope_customers)

    def lookup_path(self, ref: ObjectRef) -> str:
        return f"/v1/{ref.collection}/{ref.id}"

    def cacheable(self, ref: ObjectRef, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        fields = _IMMUTABLE.get(ref.collection)
        if not fields or any(obj.get(k) is None for k in fields):
            return None
        return {"id": ref.id, **{k: obj[k] for k in fields}}

    def upstream_headers(self, vendor_key: str, headers: Mapping[str, str]) -> dict[str, str]:
        return {"authorization": f"Bearer {vendor_key}"}

    def lookup_headers(self, vendor_key: str, headers: Mapping[str, str]) -> dict[str, str]:
        out = {"authorization": f"Bearer {vendor_key}"}
        for name in ("stripe-account", "stripe-context"):
            if value := headers.get(name):
                out[name] = value  # the object lives in the connected account
        return out

    def cache_scope(self, headers: Mapping[str, str]) -> str:
        # Lookups read in the connected account (lookup_headers), named by either header.
        return headers.get("stripe-account") or headers.get("stripe-context", "")

    def deny(self, denial: Denial) -> Rendered:
        return errors.render(denial)

    def settlement(self, delivery: Delivery) -> Settlement:
        return outcome.settlement(delivery)

    def idempotency_key(self, method: str, headers: Mapping[str, str]) -> str | None:
        # v1 honours the header on POST (stripe-python sends one on every POST, the same on its retries).
        return post_idempotency_key(method, headers)


STRIPE = StripeVendor()
