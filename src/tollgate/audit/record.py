"""One Envoy access-log line (with ext_authz's dynamic metadata) → one AuditRow. Pure.

Every line becomes a row, including calls Envoy answered itself before ext_authz was asked (unknown
route, rejected path, oversized body, ext_authz unreachable) and lines that cannot be parsed, so the
audit never silently drops a call.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from tollgate.decide.rules import Rule
from tollgate.envoy.evidence import delivery
from tollgate.vendors import vendor as find_vendor
from tollgate.vendors import vendor as vendor_named
from tollgate.vendors.base import Settlement
from tollgate.vendors.observed import Observed

# response_code_details Envoy writes when it answered without a decision from ext_authz
_ENVOY_ANSWERS = {
    "direct_response": Rule.UNKNOWN_ROUTE,
    "route_not_found": Rule.UNKNOWN_ROUTE,
    "path_normalization_failed": Rule.PATH_REJECTED,
    "request_payload_too_large": Rule.BODY_TOO_LARGE,
    "ext_authz_error": Rule.UNAVAILABLE,
}
UNPARSED = "tollgate_audit_unparsed"


class AuditRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    row_id: str  # Envoy's request id, or a digest of the line where Envoy had none
    at: datetime
    day: date
    decision: str  # allow | deny
    rule: str
    reason: str | None = None
    shadow_rule: str | None = None
    replay: bool | None = None  # a retry under an idempotency key already counted: reserved nothing
    decision_id: str | None = None
    request_id: str | None = None
    vendor: str | None = None
    method: str | None = None
    path: str | None = None
    endpoint: str | None = None
    vault_key_id: str | None = None
    policy_id: str | None = None
    grant_version: str | None = None
    mode: str | None = None
    customer: str | None = None
    connected_account: str | None = None
    idempotency_key: str | None = None
    agent_run_id: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    cost_micro_usd: int = 0
    spent_micro_usd: int | None = None  # the key's spend today after this call's reservation
    cap_micro_usd: int | None = None
    reservation_id: str | None = None
    spend_day: str | None = None  # the policy's day key the reservation was made in (yyyymmdd)
    vendor_status: int | None = None  # 0 when the vendor never answered
    response_flags: str | None = None
    duration_ms: int | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    upstream_host: str | None = None
    response_code_details: str | None = None
    # What the outcome proves, for a forwarded call with a cost (reserved, or a replay): settled, released
    # or unknown (see tollgate.vendors.base.Settlement); None for free calls and denials.
    settlement: str | None = None
    # Added in schema 4. What was asked: the parameters, redacted by ext_authz (JSON object text).
    params: str | None = None
    # What the vendor did, from its answer (tollgate.envoy.capture): the object, and the money it says it
    # moved in the minor units of its currency.
    vendor_object_id: str | None = None
    vendor_object: str | None = None
    vendor_amount_minor: int | None = None
    vendor_currency: str | None = None
    vendor_state: str | None = None
    # What the reservation settled to: the vendor's amount where it reported one (tollgate.audit.settle).
    settled_micro_usd: int | None = None
    # Added in schema 5. The approval (spec.approval) this call waited for (a denial while pending,
    # rejected or expired) or used (the allowed call).
    approval_id: str | None = None
    # Added in schema 6. The shared budget (SpendBudget) the key is under, its cap, and the budget's day
    # the reservation was charged to (its own time zone's; settlement moves that counter too).
    budget_id: str | None = None
    budget_day: str | None = None
    budget_cap_micro_usd: int | None = None
    budget_spent_micro_usd: int | None = None  # the budget's spend today after this call's reservation

    @property
    def vendor_succeeded(self) -> bool:
        return self.vendor_status is not None and 200 <= self.vendor_status < 300

    @property
    def reserved(self) -> bool:
        """The call holds a reservation that settlement must close."""
        return bool(self.reservation_id and self.vault_key_id and self.vendor and self.spend_day)

    @property
    def forwarded(self) -> bool:
        return self.decision == "allow"


def from_line(line: str, position: str) -> AuditRow:
    """`position` (file and offset) names the line when Envoy gave it no request id."""
    try:
        entry = _loads(line)
        if not isinstance(entry, dict):
            raise ValueError("not a JSON object")
        return from_entry(entry, position)
    except (ValueError, TypeError) as exc:
        now = datetime.now(UTC)
        return AuditRow(
            row_id=_digest(line, position),
            at=now,
            day=now.date(),
            decision="deny",
            rule=UNPARSED,
            reason=_valid_text(f"{type(exc).__name__}: {exc}; line: {line[:500]}"),
        )


def _loads(line: str) -> Any:
    """orjson reads a line in a third of json's time (a tenth of an ingester's CPU per line). What it
    refuses goes to json, which takes NaN and an escaped lone surrogate. Text no database stores becomes
    U+FFFD, as an invalid byte does when the file is read: a lone surrogate, and NUL, which PostgreSQL
    refuses in text. A row that cannot be written would stall the audit behind it."""
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return _valid_text(json.loads(line))
    return _valid_text(entry) if "\\u0000" in line else entry


def _valid_text(v: Any) -> Any:
    if isinstance(v, str):
        return v.encode("utf-16", "surrogatepass").decode("utf-16", "replace").replace("\x00", "\ufffd")
    if isinstance(v, dict):
        return {_valid_text(k): _valid_text(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_valid_text(x) for x in v]
    return v


def from_entry(entry: dict[str, Any], position: str) -> AuditRow:
    # The row is built once, from every field: a model_copy per step costs an ingester more per line.
    fields = _fields(entry, position)
    if fields["decision"] == "allow":  # forwarded: what the vendor answered, as its module reads it
        seen = _observed(fields["vendor"], entry.get("vendor_response"))
        fields["vendor_object_id"] = seen.object_id
        fields["vendor_object"] = seen.object_type
        fields["vendor_amount_minor"] = seen.amount_minor
        fields["vendor_currency"] = seen.currency
        fields["vendor_state"] = seen.state
    fields["settled_micro_usd"] = _settled(
        fields["settlement"],
        fields["cost_micro_usd"],
        fields["amount_minor"],
        fields["currency"],
        fields.get("vendor_amount_minor"),
        fields.get("vendor_currency"),
    )
    return AuditRow(**fields)


def _observed(vendor: str | None, raw: object) -> Observed:
    known = find_vendor(vendor or "")
    return known.observed(raw) if known and isinstance(raw, dict) else Observed()


def settled_cost(row: AuditRow) -> int | None:
    """What a settled reservation counts: the vendor's own amount, priced at the reservation's rate,
    where the vendor reported one in the call's currency; else the reservation. Rounded up, never below
    what the vendor says it moved. Above the reservation it is counted too (the vendor is the truth),
    and the alerts say so (tollgate.audit.alerts)."""
    return _settled(
        row.settlement,
        row.cost_micro_usd,
        row.amount_minor,
        row.currency,
        row.vendor_amount_minor,
        row.vendor_currency,
    )


def _settled(
    settlement: str | None,
    cost: int,
    amount_minor: int | None,
    currency: str | None,
    vendor_amount_minor: int | None,
    vendor_currency: str | None,
) -> int | None:
    if settlement is None:
        return None
    if settlement != Settlement.SETTLED.value:
        return cost if settlement == Settlement.UNKNOWN.value else 0
    if (
        vendor_amount_minor is None
        or vendor_amount_minor < 0
        or not amount_minor
        or amount_minor <= 0
        or (currency or "").lower() != vendor_currency
    ):
        return cost
    return -(-cost * vendor_amount_minor // amount_minor)


def _fields(entry: dict[str, Any], position: str) -> dict[str, Any]:
    """AuditRow's fields from Envoy's line, but for what the vendor answered and what it settles at."""
    raw = entry.get("authz")
    authz: dict[str, Any] = raw if isinstance(raw, dict) else {}
    at = _time(entry.get("start_time"))
    status = _int(entry.get("response_code"))
    request_id = _str(entry.get("request_id"))
    cost = _int(authz.get("cost_micro_usd")) or 0
    reservation_id = _str(authz.get("reservation_id"))
    if authz.get("decision"):
        decision, rule = str(authz["decision"]), str(authz.get("rule", ""))
    else:
        decision = "deny"
        rule = _ENVOY_ANSWERS.get(str(entry.get("response_code_details")), Rule.UNAVAILABLE).value
    return dict(
        row_id=request_id or _digest(json.dumps(entry, sort_keys=True), position),
        at=at,
        day=at.date(),
        decision=decision,
        rule=rule,
        reason=_str(authz.get("reason"))
        or _str(authz.get("shadow_reason"))
        or (None if authz else _str(entry.get("response_code_details"))),
        shadow_rule=_str(authz.get("shadow_rule")),
        replay=True if authz.get("replay") is True else None,
        decision_id=_str(authz.get("decision_id")),
        request_id=request_id,
        vendor=_str(authz.get("vendor")),
        method=_str(entry.get("method")),
        path=_str(authz.get("path")) or _str(entry.get("path")) or _str(entry.get("upstream_path")),
        endpoint=_str(authz.get("endpoint")),
        vault_key_id=_str(authz.get("vault_key_id")),
        policy_id=_str(authz.get("policy_id")),
        grant_version=_str(authz.get("grant_version")),
        mode=_str(authz.get("mode")),
        customer=_str(authz.get("customer")),
        connected_account=_str(authz.get("connected_account")),
        idempotency_key=_str(authz.get("idempotency_key")),
        agent_run_id=_str(authz.get("agent_run_id")) or _str(entry.get("agent_run_id")),
        amount_minor=_int(authz.get("amount_minor")),
        currency=_str(authz.get("currency")),
        cost_micro_usd=cost,
        spent_micro_usd=_int(authz.get("spent_micro_usd")),
        cap_micro_usd=_int(authz.get("cap_micro_usd")),
        reservation_id=reservation_id,
        spend_day=_str(authz.get("day")),
        # A forwarded call with no upstream host never reached the vendor: count it as no answer.
        vendor_status=(status if entry.get("upstream_host") else 0) if decision == "allow" else None,
        response_flags=_str(entry.get("response_flags")),
        duration_ms=_int(entry.get("duration_ms")),
        bytes_in=_int(entry.get("bytes_received")),
        bytes_out=_int(entry.get("bytes_sent")),
        upstream_host=_str(entry.get("upstream_host")),
        response_code_details=_str(entry.get("response_code_details")),
        settlement=_settlement(decision, _str(authz.get("vendor")), cost, reservation_id, entry),
        params=_str(authz.get("params")),
        approval_id=_str(authz.get("approval_id")),
        budget_id=_str(authz.get("budget_id")),
        budget_day=_str(authz.get("budget_day")),
        budget_cap_micro_usd=_int(authz.get("budget_cap_micro_usd")),
        budget_spent_micro_usd=_int(authz.get("budget_spent_micro_usd")),
    )


def _settlement(
    decision: str, vendor: str | None, cost: int, reservation_id: str | None, entry: dict[str, Any]
) -> str | None:
    """The vendor's own rule on what Envoy saw; a vendor Tollgate does not know proves nothing."""
    if decision != "allow" or not (reservation_id or cost > 0):
        return None
    known = vendor_named(vendor) if vendor else None
    outcome = known.settlement(delivery(_entry_ints(entry))) if known else Settlement.UNKNOWN
    return outcome.value


def _entry_ints(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "response_code": _int(entry.get("response_code"))}


def _digest(text: str, position: str) -> str:
    return "line_" + hashlib.sha256(f"{position}\n{text}".encode()).hexdigest()[:32]


def _time(v: object) -> datetime:
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def _str(v: object) -> str | None:
    return v if isinstance(v, str) and v not in ("", "-") else None


def _int(v: object) -> int | None:
    """An integer that fits a BIGINT column, or None. Only ASCII digits: int() reads other Unicode digits,
    or raises on some of them, and a value must never make its whole line unreadable."""
    if type(v) is str:  # most: ext_authz writes its numbers as strings
        if len(v) < 19 and v.isdigit() and v.isascii():  # under 10**18: fits
            return int(v)
        digits = v[1:] if v.startswith("-") else v
        n = int(v) if len(v) < 20 and digits.isdigit() and digits.isascii() else None
    elif type(v) is int:
        n = v
    elif type(v) is float and v.is_integer():
        n = int(v)
    else:  # a bool among them: JSON's true is no number
        return None
    return n if n is not None and -(2**63) <= n < 2**63 else None
