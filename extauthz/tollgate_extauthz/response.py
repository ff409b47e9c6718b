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
from tollgate_extauthz.check import Decision

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
    fields = _metadata(decision, call, (token or "", decision.vendor_key or ""), redact)
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
        _fill(r.dynamic_metadata, fields)  # in place: a Struct built apart would be copied in whole
        return r
    return denied(
        v, decision.id, vendor, _fill(struct_pb2.Struct(), fields), approval_id=decision.approval_id
    )


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
    fields: dict[str, Any] = {"decision_id": decision_id, "decision": "deny", "rule": rule.value}
    if call is not None:
        fields.update(_call_fields(call))
    return _fill(struct_pb2.Struct(), fields)


def _metadata(d: Decision, call: Call, secrets: tuple[str, ...], redact: frozenset[str]) -> dict[str, Any]:
    v = d.verdict
    fields: dict[str, Any] = {
        "decision_id": d.id,
        "decision": "allow" if isinstance(v, Allow) else "deny",
        "rule": Rule.ALLOWED.value if isinstance(v, Allow) else v.rule.value,
        **_call_fields(call),
    }
    if call.params:
        # What was asked, for the audit row: redacted, then bounded (one access-log line carries it).
        known = find_vendor(call.vendor)
        fields["params"] = audit_json(
            call.params, _hidden(known.redacted if known else frozenset(), redact), secrets
        )
    if isinstance(v, Allow):
        fields["cost_micro_usd"] = v.cost_micro_usd
        if v.shadow_denial is not None:
            fields["shadow_rule"] = v.shadow_denial.rule.value
            fields["shadow_reason"] = v.shadow_denial.message
        if v.replay:
            fields["replay"] = True
    else:
        fields["reason"] = v.message
    if d.key_id is not None:
        fields["vault_key_id"] = d.key_id
    if d.grant is not None:
        fields.update(
            cap_micro_usd=d.grant.daily_cap_micro_usd,
            vault_key_id=d.grant.key_id,
            policy_id=d.grant.policy_id,
            grant_version=d.grant.version,
            mode=d.grant.mode.value,
        )
        if d.grant.budget is not None:  # the audit row names the budget (and settles its counter)
            fields.update(
                budget_id=d.grant.budget.id, budget_cap_micro_usd=d.grant.budget.daily_cap_micro_usd
            )
    if d.endpoint is not None:
        fields["endpoint"] = d.endpoint.name
    if d.facts is not None and (d.facts.customers or d.facts.recipients):
        fields["customer"] = _whom(d.facts.customers or d.facts.recipients)
    if d.facts is not None and d.facts.cost is not None:
        fields.update(amount_minor=d.facts.cost.amount, currency=d.facts.cost.currency)
    if d.reservation_id:
        fields.update(reservation_id=d.reservation_id, day=d.day)
        if d.budget_day:
            fields["budget_day"] = d.budget_day
    if d.budget_spent_micro_usd is not None:
        fields["budget_spent_micro_usd"] = d.budget_spent_micro_usd
    if d.spent_micro_usd is not None:
        fields["spent_micro_usd"] = d.spent_micro_usd
    if d.approval_id is not None:  # pending on a denial row, used on an allowed one (rule 7b)
        fields["approval_id"] = d.approval_id
    return fields


def _whom(who: frozenset[str]) -> str:
    """The audit's customer column: Stripe customers, or the numbers and addresses a message goes to
    (Twilio, Resend). A batch can name thousands of recipients: the column keeps the first few and a
    count, so one access-log line stays small; the policy already checked every one of them."""
    names = sorted(who)
    shown = ",".join(names[:_WHOM_SHOWN])
    return shown if len(names) <= _WHOM_SHOWN else f"{shown} (+{len(names) - _WHOM_SHOWN} more)"


def _call_fields(call: Call) -> dict[str, Any]:
    out: dict[str, Any] = {"vendor": call.vendor, "method": call.method, "path": call.path}
    known = find_vendor(call.vendor)
    for name, header in (
        ("idempotency_key", "idempotency-key"),
        ("agent_run_id", "x-agent-run-id"),
        ("connected_account", known.account_header if known else ""),  # the vendor's own header, if any
    ):
        if header and (value := call.headers.get(header)):
            out[name] = value
    return out


@functools.lru_cache(maxsize=64)
def _hidden(vendor_names: frozenset[str], extra: frozenset[str]) -> frozenset[str]:
    return vendor_names | extra


def _fill(s: struct_pb2.Struct, fields: dict[str, Any]) -> struct_pb2.Struct:
    values = s.fields
    for k, v in fields.items():
        # Struct numbers are doubles: send integers as strings where they could exceed 2**53.
        if isinstance(v, str):
            values[k].string_value = v
        elif isinstance(v, bool):
            values[k].bool_value = v
        elif isinstance(v, int):
            values[k].string_value = str(v)
        else:
            s.update({k: v})
    return s


def _add_header(to: Any, key: str, value: str) -> None:
    """Append to a repeated HeaderValueOption field what _header builds."""
    h = to.add(append_action=_OVERWRITE)
    h.header.key = key
    h.header.value = value


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=key, value=value), append_action=_OVERWRITE
    )
