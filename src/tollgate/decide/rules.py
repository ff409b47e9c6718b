"""Rule: the stable code of every outcome, and the HTTP status each one answers with. Pure.

The same string is the vendor error `code`, the `x-tollgate-rule` header, the audit column and the
metric label, so renaming one is a breaking change.
"""

from __future__ import annotations

from enum import StrEnum


class Rule(StrEnum):
    ALLOWED = "tollgate_allowed"
    KEY_UNKNOWN = "tollgate_key_unknown"
    KEY_REVOKED = "tollgate_key_revoked"
    KEY_EXPIRED = "tollgate_key_expired"
    KEY_SUSPENDED = "tollgate_key_suspended"
    KEY_WRONG_VENDOR = "tollgate_key_wrong_vendor"
    ENDPOINT_NOT_ALLOWED = "tollgate_endpoint_not_allowed"
    ENDPOINT_UNPRICED = "tollgate_endpoint_unpriced"
    REQUEST_INVALID = "tollgate_request_invalid"
    ACCOUNT_NOT_ALLOWED = "tollgate_account_not_allowed"
    PARAM_RULE_BROKEN = "tollgate_param_rule_broken"
    CUSTOMER_OUT_OF_SCOPE = "tollgate_customer_out_of_scope"
    RECIPIENT_OUT_OF_SCOPE = "tollgate_recipient_out_of_scope"
    CURRENCY_NOT_ALLOWED = "tollgate_currency_not_allowed"
    APPROVAL_REQUIRED = "tollgate_approval_required"
    APPROVAL_REJECTED = "tollgate_approval_rejected"
    APPROVAL_EXPIRED = "tollgate_approval_expired"
    APPROVAL_USED = "tollgate_approval_used"
    LOOP_BREAKER = "tollgate_loop_breaker"
    IDEMPOTENCY_KEY_REUSED = "tollgate_idempotency_key_reused"
    CAP_EXCEEDED = "tollgate_cap_exceeded"
    BUDGET_EXCEEDED = "tollgate_budget_exceeded"
    OBJECT_NOT_FOUND = "tollgate_object_not_found"
    UNAVAILABLE = "tollgate_unavailable"
    # Answered by Envoy itself, before ext_authz is asked; named here so the audit speaks one vocabulary.
    UNKNOWN_ROUTE = "tollgate_unknown_route"
    PATH_REJECTED = "tollgate_path_rejected"
    BODY_TOO_LARGE = "tollgate_body_too_large"
    REQUEST_TIMEOUT = "tollgate_request_timeout"
    VENDOR_UNREACHABLE = "tollgate_vendor_unreachable"
    VENDOR_TIMEOUT = "tollgate_vendor_timeout"

    @property
    def status(self) -> int:
        return STATUS[self]

    @property
    def about_the_key(self) -> bool:
        """Rules about the credential itself: never relaxed by shadow mode."""
        return self in (
            Rule.KEY_UNKNOWN,
            Rule.KEY_REVOKED,
            Rule.KEY_EXPIRED,
            Rule.KEY_SUSPENDED,
            Rule.KEY_WRONG_VENDOR,
        )


STATUS: dict[Rule, int] = {
    Rule.ALLOWED: 200,
    Rule.KEY_UNKNOWN: 401,
    Rule.KEY_REVOKED: 401,
    Rule.KEY_EXPIRED: 401,
    Rule.KEY_SUSPENDED: 401,
    Rule.KEY_WRONG_VENDOR: 401,
    Rule.ENDPOINT_NOT_ALLOWED: 403,
    Rule.ENDPOINT_UNPRICED: 403,
    Rule.REQUEST_INVALID: 400,
    Rule.ACCOUNT_NOT_ALLOWED: 403,
    Rule.PARAM_RULE_BROKEN: 403,
    Rule.CUSTOMER_OUT_OF_SCOPE: 403,
    Rule.RECIPIENT_OUT_OF_SCOPE: 403,
    Rule.CURRENCY_NOT_ALLOWED: 403,
    # 403: stripe-python's PermissionError, Twilio's 20403, Resend's validation_error; never retried by an SDK.
    Rule.APPROVAL_REQUIRED: 403,
    Rule.APPROVAL_REJECTED: 403,
    Rule.APPROVAL_EXPIRED: 403,
    Rule.APPROVAL_USED: 403,
    Rule.LOOP_BREAKER: 429,
    Rule.IDEMPOTENCY_KEY_REUSED: 400,
    Rule.CAP_EXCEEDED: 402,
    Rule.BUDGET_EXCEEDED: 402,
    Rule.OBJECT_NOT_FOUND: 404,
    Rule.UNAVAILABLE: 503,
    Rule.UNKNOWN_ROUTE: 404,
    Rule.PATH_REJECTED: 400,
    Rule.BODY_TOO_LARGE: 413,
    Rule.REQUEST_TIMEOUT: 408,
    Rule.VENDOR_UNREACHABLE: 502,
    Rule.VENDOR_TIMEOUT: 504,
}
