"""Decision → CheckResponse: the key swap on allow, the vendor-shaped error on deny, and the
dynamic metadata that carries the decision into Envoy's access log (the audit's source)."""

from __future__ import annotations

import functools
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2
from envoy.type.v3 import http_status_pb2
from google.protobuf import struct_pb2
from google.rpc import code_pb2, status_pb2

from tollgate.decide.call import Call
from tollgate.decide.rules import Rule
from tollgate.decide.verdict import Allow, Deny
from tollgate.vendors import vendor as find_vendor
from tollgate.vendors.base import Denial, Rendered, Vendor
from tollgate.vendors.redaction import audit_json
from tollgate.vendors.stripe.errors import render as render_stripe_like
from tollgate_extauthz.check import ALLOWED, Decision

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_WHOM_SHOWN = 10  # customers or recipients named in one audit row


def to_response(
    decision: Decision,
    call: Call,
    vendor: Vendor | None,
    *,
    token: str | None = None,
    redact: frozenset[str] = frozenset(),
) -> external_auth_pb2.CheckResponse:
    """`token` (the vault token presented) and the real key are masked wherever they appear in the
    parameters the audit keeps; `redact` adds parameter names to the vendor's own redaction list."""
    secrets = (token or "", decision.vendor_key or "")
    v = decision.verdict
    if isinstance(v, Allow):
        assert vendor is not None and decision.vendor_key is not None
        # Built in place: each nested constructor would build its message and then copy it in.
        r = external_auth_pb2.CheckResponse()
        r.status.code = code_pb2.OK
        ok = r.ok_response
        for k, val in vendor.upstream_headers(decision.vendor_key, call.headers).items():
            _add_header(ok.headers, k, val)
        _add_header(ok.response_headers_to_add, "x-tollgate-decision", decision.id)
        # Envoy's router does not strip x-envoy-* headers a client sent; they must not reach a vendor.
        ok.headers_to_remove.extend([k for k in call.headers if k.startswith("x-envoy-")])
        _metadata(r.dynamic_metadata.fields, decision, call, secrets, redact)
        return r
    meta = struct_pb2.Struct()
    _metadata(meta.fields, decision, call, secrets, redact)
    return denied(v, decision.id, vendor, meta, approval_id=decision.approval_id)


def denied(
    deny: Deny,
    decision_id: str,
    vendor: Vendor | None,
    meta: struct_pb2.Struct,
    *,
    approval_id: str | None = None,
) -> external_auth_pb2.CheckResponse:
    """`approval_id`: the approval the call waits for or met, as a header whatever the vendor, and in the
    body where the vendor's renderer puts it."""
    denial = Denial(
        code=deny.rule.value,
        status=deny.status,
        message=deny.message,
        retry=deny.rule is Rule.UNAVAILABLE,
        headers={
            "x-tollgate-rule": deny.rule.value,
            "x-tollgate-decision": decision_id,
            **({"retry-after": str(deny.retry_after_s)} if deny.retry_after_s is not None else {}),
            **({"x-tollgate-approval-id": approval_id} if approval_id is not None else {}),
        },
        approval_id=approval_id,
    )
    # Without a vendor there is no SDK to please; Stripe's shape is as good a JSON error as any.
    rendered: Rendered = vendor.deny(denial) if vendor else render_stripe_like(denial)
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(
            code=code_pb2.PERMISSION_DENIED if deny.status != 503 else code_pb2.UNAVAILABLE
        ),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=rendered.status),
            headers=[_header(k, val) for k, val in rendered.headers.items()],
            body=rendered.body.decode(),
        ),
        dynamic_metadata=meta,
    )


def metadata_for_failure(decision_id: str, call: Call | None, rule: Rule) -> struct_pb2.Struct:
    meta = struct_pb2.Struct()
    f = meta.fields
    f["decision_id"].string_value = decision_id
    f["decision"].string_value = "deny"
    f["rule"].string_value = rule.value
    if call is not None:
        _call_fields(f, call)
    return meta


def _metadata(f: Any, d: Decision, call: Call, secrets: tuple[str, ...], redact: frozenset[str]) -> None:
    """The audit's fields, written into the response's Struct (`f`: its `fields` map) one by one: no
    dict built first and walked again. Every value is a string but `replay`: Struct numbers are doubles,
    and an integer (micro-USD) could exceed 2**53."""
    v = d.verdict
    f["decision_id"].string_value = d.id
    if isinstance(v, Allow):
        f["decision"].string_value = "allow"
        f["rule"].string_value = ALLOWED
    else:
        f["decision"].string_value = "deny"
        f["rule"].string_value = v.rule.value
    _call_fields(f, call)
    if call.params:
        # What was asked, for the audit row: redacted, then bounded (one access-log line carries it).
        known = find_vendor(call.vendor)
        f["params"].string_value = audit_json(
            call.params, _hidden(known.redacted if known else frozenset(), redact), secrets
        )
    if isinstance(v, Allow):
        f["cost_micro_usd"].string_value = str(v.cost_micro_usd)
        if v.shadow_denial is not None:
            f["shadow_rule"].string_value = v.shadow_denial.rule.value
            f["shadow_reason"].string_value = v.shadow_denial.message
        if v.replay:
            f["replay"].bool_value = True
    else:
        f["reason"].string_value = v.message
    g = d.grant
    key_id = g.key_id if g is not None else d.key_id
    if key_id is not None:
        f["vault_key_id"].string_value = key_id
    if g is not None:
        f["cap_micro_usd"].string_value = str(g.daily_cap_micro_usd)
        f["policy_id"].string_value = g.policy_id
        f["grant_version"].string_value = g.version
        f["mode"].string_value = g.mode.value
        if g.budget is not None:  # the audit row names the budget (and settles its counter)
            f["budget_id"].string_value = g.budget.id
            f["budget_cap_micro_usd"].string_value = str(g.budget.daily_cap_micro_usd)
    if d.endpoint is not None:
        f["endpoint"].string_value = d.endpoint.name
    facts = d.facts
    if facts is not None:
        if facts.customers or facts.recipients:
            f["customer"].string_value = _whom(facts.customers or facts.recipients)
        if facts.cost is not None:
            f["amount_minor"].string_value = str(facts.cost.amount)
            f["currency"].string_value = facts.cost.currency
    if d.reservation_id:
        f["reservation_id"].string_value = d.reservation_id
        if d.day is not None:
            f["day"].string_value = d.day
        if d.budget_day:
            f["budget_day"].string_value = d.budget_day
    if d.budget_spent_micro_usd is not None:
        f["budget_spent_micro_usd"].string_value = str(d.budget_spent_micro_usd)
    if d.spent_micro_usd is not None:
        f["spent_micro_usd"].string_value = str(d.spent_micro_usd)
    if d.approval_id is not None:  # pending on a denial row, used on an allowed one (rule 7b)
        f["approval_id"].string_value = d.approval_id


def _whom(who: frozenset[str]) -> str:
    """The audit's customer column: Stripe customers, or the numbers and addresses a message goes to
    (Twilio, Resend). A batch can name thousands of recipients: the column keeps the first few and a
    count, so one access-log line stays small; the policy already checked every one of them."""
    names = sorted(who)
    shown = ",".join(names[:_WHOM_SHOWN])
    return shown if len(names) <= _WHOM_SHOWN else f"{shown} (+{len(names) - _WHOM_SHOWN} more)"


def _call_fields(f: Any, call: Call) -> None:
    f["vendor"].string_value = call.vendor
    f["method"].string_value = call.method
    f["path"].string_value = call.path
    headers = call.headers
    if value := headers.get("idempotency-key"):
        f["idempotency_key"].string_value = value
    if value := headers.get("x-agent-run-id"):
        f["agent_run_id"].string_value = value
    known = find_vendor(call.vendor)
    if known is not None and known.account_header and (value := headers.get(known.account_header)):
        f["connected_account"].string_value = value  # the vendor's own header, if it has one


@functools.lru_cache(maxsize=64)
def _hidden(vendor_names: frozenset[str], extra: frozenset[str]) -> frozenset[str]:
    return vendor_names | extra


def _add_header(to: Any, key: str, value: str) -> None:
    """Append to a repeated HeaderValueOption field what _header builds."""
    h = to.add(append_action=_OVERWRITE)
    h.header.key = key
    h.header.value = value


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=key, value=value), append_action=_OVERWRITE
    )
