"""Authorization.Check: request → check → response. Always answers; anything unexpected is a
fail-closed deny (503), never an allow and never a crash Envoy would have to interpret."""

from __future__ import annotations

import logging
import secrets
import time

import grpc
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc

from tollgate.decide import engine
from tollgate.decide.rules import Rule
from tollgate.decide.verdict import Allow, Deny
from tollgate.errors import StoreUnavailable, TollgateError
from tollgate_extauthz.check import Checker, Decision
from tollgate_extauthz.metrics import Metrics
from tollgate_extauthz.request import Incoming, to_incoming
from tollgate_extauthz.response import denied, metadata_for_failure, to_response

log = logging.getLogger("tollgate.extauthz")


class AuthorizationServicer(external_auth_pb2_grpc.AuthorizationServicer):
    def __init__(
        self, checker: Checker, metrics: Metrics | None = None, redact: frozenset[str] = frozenset()
    ) -> None:
        self._checker = checker
        self._metrics = metrics or Metrics()
        self._redact = redact  # parameter names the audit never holds, beyond each vendor's own list

    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        started = time.perf_counter()
        incoming: Incoming | None = None
        try:
            incoming = to_incoming(request)
            decision = await self._checker.check(incoming)
        except StoreUnavailable as exc:
            self._metrics.store_errors.inc()
            return self._fail(incoming, f"{type(exc).__name__}: {exc}", started)
        except TollgateError as exc:
            return self._fail(incoming, f"{type(exc).__name__}: {exc}", started)
        except Exception as exc:  # the servicer boundary: answer deny, never let Envoy guess
            log.exception("check failed")
            self._metrics.internal_errors.inc()
            return self._fail(incoming, f"internal error {type(exc).__name__}", started)
        v = decision.verdict
        rule = v.rule if isinstance(v, Deny) else Rule.ALLOWED
        vendor = incoming.call.vendor or "-"
        self._observe(vendor, decision.allowed, rule, started)
        self._observe_spend(vendor, decision)
        if isinstance(v, Allow):
            m = self._metrics
            if decision.reservation_id:
                m.reserved.labels(vendor, _policy(decision)).inc(v.cost_micro_usd)
            if v.shadow_denial is not None:
                m.shadow_denials.labels(vendor, v.shadow_denial.rule.value).inc()
            if v.replay:
                m.replays.labels(vendor).inc()
        if (state := _approval_state(decision)) is not None:
            self._metrics.approvals.labels(vendor, state).inc()
        # Envoy's access log is the audit of every call; here denials are worth a line, allows only in debug.
        level = logging.DEBUG if decision.allowed else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "decision id=%s rule=%s key=%s vendor=%s %s %s",
                decision.id,
                rule.value,
                decision.key_id or "-",
                vendor,
                incoming.call.method,
                incoming.call.path,
            )
        return to_response(
            decision, incoming.call, incoming.vendor, token=incoming.token, redact=self._redact
        )

    def _observe(self, vendor: str, allowed: bool, rule: Rule, started: float) -> None:
        m = self._metrics
        m.decisions.labels(vendor, "allow" if allowed else "deny", rule.value).inc()
        m.check_seconds.labels(vendor).observe(time.perf_counter() - started)

    def _observe_spend(self, vendor: str, decision: Decision) -> None:
        """The key's share of its cap after a money call (allowed, or refused at the cap), and its shared
        budget's share of the budget's cap (allowed, or refused at the budget)."""
        v, grant, spent = decision.verdict, decision.grant, decision.spent_micro_usd
        if grant is None:
            return
        refused = v.rule if isinstance(v, Deny) else None
        m = self._metrics
        money = decision.reservation_id is not None or refused is Rule.CAP_EXCEEDED
        if money and spent is not None and grant.daily_cap_micro_usd > 0:
            m.cap_share.labels(vendor, grant.policy_id).observe(spent / grant.daily_cap_micro_usd)
        b, b_spent = grant.budget, decision.budget_spent_micro_usd
        if b is None or b_spent is None or b.daily_cap_micro_usd <= 0:
            return
        charged = decision.budget_day is not None  # set only when the call was reserved against the budget
        if charged and isinstance(v, Allow):
            m.budget_reserved.labels(b.id).inc(v.cost_micro_usd)
        if charged or refused is Rule.BUDGET_EXCEEDED:
            m.budget_share.labels(b.id).observe(b_spent / b.daily_cap_micro_usd)

    def _fail(
        self, incoming: Incoming | None, detail: str, started: float
    ) -> external_auth_pb2.CheckResponse:
        did = "dec_" + secrets.token_hex(8)
        log.warning("decision id=%s rule=%s detail=%s", did, Rule.UNAVAILABLE.value, detail)
        self._observe(
            incoming.call.vendor if incoming and incoming.call.vendor else "-",
            False,
            Rule.UNAVAILABLE,
            started,
        )
        deny = engine.unavailable(detail.split(":")[0])
        call = incoming.call if incoming else None
        return denied(
            deny,
            did,
            incoming.vendor if incoming else None,
            metadata_for_failure(did, call, Rule.UNAVAILABLE),
        )


_APPROVAL_REFUSALS = {
    Rule.APPROVAL_REJECTED: "rejected",
    Rule.APPROVAL_EXPIRED: "expired",
    Rule.APPROVAL_USED: "already_used",
}


def _approval_state(decision: Decision) -> str | None:
    """What this call did to, or met of, its approval; None when it had none or only waited again."""
    v = decision.verdict
    if decision.approval_id is None:
        return None
    if isinstance(v, Allow):
        return "used" if decision.reservation_id else None
    if v.rule is Rule.APPROVAL_REQUIRED:
        return "pending" if decision.approval_created else None
    return _APPROVAL_REFUSALS.get(v.rule)


def _policy(decision: Decision) -> str:
    return decision.grant.policy_id if decision.grant is not None else "-"
