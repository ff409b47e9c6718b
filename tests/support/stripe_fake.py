"""A small Stripe fake in Stripe's JSON shape, for what localstripe lacks (disputes, files, fixed ids):
objects kept by id, lists with `limit` / `starting_after` paging, and the few writes the agent roles make.
Serve it behind RecordingUpstream (the API host and the files host share one fake) to also record what
reached Stripe."""

from __future__ import annotations

import copy
import itertools
import threading
from typing import Any
from urllib.parse import parse_qsl

from tests.support.recorder import RecordedRequest, Reply

# List path → object type (`GET /v1/charges` lists the objects whose "object" is "charge").
_LISTS = {
    "charges": "charge",
    "refunds": "refund",
    "invoices": "invoice",
    "subscriptions": "subscription",
    "disputes": "dispute",
    "payment_intents": "payment_intent",
    "customers": "customer",
    "payouts": "payout",
    "balance_transactions": "balance_transaction",
}


def _missing(what: str) -> Reply:
    return Reply(
        404, {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": what}}
    )


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`evidence[uncategorized_file]=file_1` → {"evidence": {"uncategorized_file": "file_1"}}."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


class StripeFake:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        return obj

    def __call__(self, req: RecordedRequest) -> Reply:
        with self._lock:
            return self._answer(req)

    def _answer(self, req: RecordedRequest) -> Reply:
        path, _, query = req.path.partition("?")
        parts = path.strip("/").split("/")[1:]  # without "v1"
        if req.method == "GET":
            return self._get(parts, dict(parse_qsl(query)))
        if parts == ["files"]:
            return self._file(req)
        params = _nest(parse_qsl(req.body.decode()))
        if parts == ["refunds"]:
            return self._refund(params)
        if parts == ["payment_intents"]:
            return self._payment_intent(params)
        if len(parts) == 3 and parts[0] == "invoices" and parts[2] == "pay":
            inv = self.objects.get(parts[1])
            if inv is None:
                return _missing(f"No such invoice: '{parts[1]}'")
            inv.update(status="paid", amount_remaining=0, amount_paid=inv["amount_due"])
            return Reply(200, inv)
        if len(parts) == 2 and parts[1] in self.objects:
            obj = self.objects[parts[1]]
            if "coupon" in params:
                obj["discount"] = {
                    "object": "discount",
                    "coupon": {"id": params.pop("coupon"), "object": "coupon"},
                }
            if "cancel_at_period_end" in params:
                obj["cancel_at_period_end"] = params.pop("cancel_at_period_end") == "true"
            for key, value in params.items():
                obj[key] = {**obj.get(key, {}), **value} if isinstance(value, dict) else value
            return Reply(200, obj)
        return _missing(f"Unrecognized request URL ({req.method}: {path})")

    def _get(self, parts: list[str], query: dict[str, str]) -> Reply:
        if len(parts) == 2:
            obj = self.objects.get(parts[1])
            return Reply(200, obj) if obj else _missing(f"No such object: '{parts[1]}'")
        kind = _LISTS.get(parts[0]) if len(parts) == 1 else None
        if kind is None:
            return _missing(f"Unrecognized request URL (GET: /v1/{'/'.join(parts)})")
        items = [o for o in self.objects.values() if o.get("object") == kind]
        if "customer" in query:
            items = [o for o in items if o.get("customer") == query["customer"]]
        if after := query.get("starting_after"):
            ids = [o["id"] for o in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        limit = int(query.get("limit", "10"))
        page = items[:limit]
        return Reply(
            200, {"object": "list", "url": f"/v1/{parts[0]}", "data": page, "has_more": len(items) > limit}
        )

    def _refund(self, params: dict[str, Any]) -> Reply:
        charge = self.objects.get(params.get("charge", ""))
        if charge is None:
            return _missing("No such charge")
        left = charge["amount_captured"] - charge["amount_refunded"]
        amount = int(params.get("amount", left))
        charge["amount_refunded"] += amount
        refund = {
            "id": f"re_fake{next(self._ids)}",
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "status": "succeeded",
            "metadata": params.get("metadata", {}),
        }
        return Reply(200, self.add(refund))

    def _payment_intent(self, params: dict[str, Any]) -> Reply:
        confirmed = params.get("confirm") == "true"
        pi = {
            "id": f"pi_fake{next(self._ids)}",
            "object": "payment_intent",
            "amount": int(params["amount"]),
            "currency": params["currency"],
            "customer": params.get("customer"),
            "payment_method": params.get("payment_method"),
            "status": "succeeded" if confirmed else "requires_confirmation",
            "capture_method": params.get("capture_method", "automatic"),
        }
        return Reply(200, self.add(pi))

    def _file(self, req: RecordedRequest) -> Reply:
        purpose = req.body.split(b'name="purpose"\r\n\r\n', 1)[1].split(b"\r\n", 1)[0].decode()
        f = {"id": f"file_fake{next(self._ids)}", "object": "file", "purpose": purpose, "size": len(req.body)}
        return Reply(200, self.add(f))

    def snapshot(self, oid: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.objects[oid])
