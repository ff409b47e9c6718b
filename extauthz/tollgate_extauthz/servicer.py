"""Authorization.Check: request → check → response. Always answers; anything unexpected is a
fail-closed deny (503), never an allow and never a crash Envoy would have to interpret."""

from __future__ import annotations

import logging
import secrets

import grpc
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc

from tollgate.decide import engine
from tollgate.decide.rules import Rule
from tollgate.errors import TollgateError
from tollgate_extauthz.check import Checker
from tollgate_extauthz.request import Incoming, to_incoming
from tollgate_extauthz.response import denied, metadata_for_failure, to_response

log = logging.getLogger("tollgate.extauthz")


class AuthorizationServicer(external_auth_pb2_grpc.AuthorizationServicer):
    def __init__(self, checker: Checker) -> None:
        self._checker = checker

    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        incoming: Incoming | None = None
        try:
            incoming = to_incoming(request)
            decision = await self._checker.check(incoming)
        except TollgateError as exc:
            return self._fail(incoming, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # the servicer boundary: answer deny, never let Envoy guess
            log.exception("check failed")
            return self._fail(incoming, f"internal error {type(exc).__name__}")
        v = decision.verdict
        # Envoy's access log is the audit of every call; here denials are worth a line, allows only in debug.
        log.log(
            logging.DEBUG if decision.allowed else logging.INFO,
            "decision id=%s rule=%s key=%s vendor=%s %s %s",
            decision.id,
            getattr(v, "rule", Rule.ALLOWED).value,
            decision.grant.key_id if decision.grant else "-",
            incoming.call.vendor,
            incoming.call.method,
            incoming.call.path,
        )
        return to_response(decision, incoming.call, incoming.vendor)

    def _fail(self, incoming: Incoming | None, detail: str) -> external_auth_pb2.CheckResponse:
        did = "dec_" + secrets.token_hex(8)
        log.warning("decision id=%s rule=%s detail=%s", did, Rule.UNAVAILABLE.value, detail)
        deny = engine.unavailable(detail.split(":")[0])
        call = incoming.call if incoming else None
        return denied(
            deny,
            did,
            incoming.vendor if incoming else None,
            metadata_for_failure(did, call, Rule.UNAVAILABLE),
        )
