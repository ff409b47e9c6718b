"""Settlement by evidence as a table. The Envoy fields of each row are copied from lines a real Envoy 1.40
wrote in tests/e2e/test_settlement.py (which checks the same outcomes live); the vendor rows add each
vendor's own "not processed" statuses. Only a proven refusal releases; everything else stays counted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tollgate.audit.record import from_line
from tollgate.audit.settle import RELEASED, SETTLED, UNKNOWN, settlement_for
from tollgate.envoy.evidence import delivery
from tollgate.vendors import VENDORS
from tollgate.vendors.base import Delivery, Settlement

HOST = "127.0.0.1:49975"
# (what happened, Envoy's fields as measured)
ENVOY: dict[str, dict[str, Any]] = {
    "vendor 200": {"response_code": 200, "response_code_details": "via_upstream", "response_flags": "-", "upstream_host": HOST},
    "vendor 402": {"response_code": 402, "response_code_details": "via_upstream", "response_flags": "-", "upstream_host": HOST},
    "vendor 429": {"response_code": 429, "response_code_details": "via_upstream", "response_flags": "-", "upstream_host": HOST},
    "vendor 500": {"response_code": 500, "response_code_details": "via_upstream", "response_flags": "-", "upstream_host": HOST},
    "vendor 502": {"response_code": 502, "response_code_details": "via_upstream", "response_flags": "-", "upstream_host": HOST},
    "reset after send": {"response_code": 503, "response_code_details": "upstream_reset_before_response_started{connection_termination}", "response_flags": "UC", "upstream_host": HOST},
    "client disconnect": {"response_code": 0, "response_code_details": "downstream_remote_disconnect", "response_flags": "DC", "upstream_host": HOST},
    "route timeout 504": {"response_code": 504, "response_code_details": "response_timeout", "response_flags": "UT", "upstream_host": HOST},
    "connection refused": {"response_code": 503, "response_code_details": "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}", "response_flags": "UF", "upstream_host": HOST},
    "ext_authz denial": {"response_code": 402, "response_code_details": "ext_authz_denied", "response_flags": "UAEX", "upstream_host": None},
    "ext_authz down": {"response_code": 503, "response_code_details": "ext_authz_error", "response_flags": "UAEX", "upstream_host": None},
}  # fmt: skip

AUTHZ = {
    "decision": "allow",
    "rule": "tollgate_allowed",
    "vendor": "stripe",
    "vault_key_id": "agents/bot",
    "cost_micro_usd": "10000000",
    "reservation_id": "r1",
    "day": "20261201",
}


def line(case: str, **authz: object) -> str:
    return json.dumps({"start_time": "2026-12-01T20:00:00.000Z", **ENVOY[case], "authz": {**AUTHZ, **authz}})


@pytest.mark.parametrize(
    ("case", "outcome"),
    [
        ("vendor 200", SETTLED),
        ("vendor 402", RELEASED),
        ("vendor 429", RELEASED),
        ("vendor 500", UNKNOWN),
        ("vendor 502", UNKNOWN),
        ("reset after send", UNKNOWN),
        ("client disconnect", UNKNOWN),
        ("route timeout 504", UNKNOWN),
        ("connection refused", RELEASED),
    ],
)
def test_a_reservation_goes_back_only_on_proof_that_no_money_moved(case: str, outcome: str) -> None:
    row = from_line(line(case), "f@0")
    assert settlement_for(row) == outcome
    assert row.response_code_details == ENVOY[case]["response_code_details"]


@pytest.mark.parametrize("case", ["ext_authz denial", "ext_authz down"])
def test_calls_ext_authz_did_not_allow_hold_nothing_to_settle(case: str) -> None:
    authz = {"decision": "deny", "rule": "tollgate_cap_exceeded"} if case == "ext_authz denial" else {}
    entry = {"start_time": "2026-12-01T20:00:00.000Z", **ENVOY[case], **({"authz": authz} if authz else {})}
    row = from_line(json.dumps(entry), "f@0")
    assert row.decision == "deny" and settlement_for(row) is None
    assert delivery(ENVOY[case]).never_sent  # and Envoy's own view agrees: nothing left for the vendor


def test_a_status_envoy_wrote_itself_is_never_taken_for_the_vendors() -> None:
    # Envoy's 503 after a reset is not the vendor's 503, and a 402 from ext_authz is not Stripe's 402.
    assert delivery(ENVOY["reset after send"]) == Delivery(vendor_status=None, never_sent=False)
    assert delivery(ENVOY["ext_authz denial"]).vendor_status is None


def test_a_replay_carries_its_own_outcome_but_nothing_to_release() -> None:
    row = from_line(line("client disconnect", reservation_id=None, replay=True), "f@0")
    assert row.settlement == UNKNOWN and settlement_for(row) is None


def test_a_vendor_tollgate_does_not_know_proves_nothing() -> None:
    assert from_line(line("vendor 402", vendor="acme"), "f@0").settlement == UNKNOWN


# Each vendor's own list of "not processed" (documented in vendors/<vendor>/outcome.py).
VENDOR_STATUSES = {
    "stripe": {400: RELEASED, 401: RELEASED, 402: RELEASED, 403: RELEASED, 404: RELEASED, 409: RELEASED,
               429: RELEASED, 422: UNKNOWN, 500: UNKNOWN, 503: UNKNOWN, 200: SETTLED, 302: UNKNOWN},
    "twilio": {400: RELEASED, 401: RELEASED, 403: RELEASED, 404: RELEASED, 405: RELEASED, 429: RELEASED,
               402: UNKNOWN, 409: UNKNOWN, 500: UNKNOWN, 201: SETTLED},
    "resend": {400: RELEASED, 401: RELEASED, 403: RELEASED, 404: RELEASED, 409: RELEASED, 422: RELEASED,
               429: RELEASED, 402: UNKNOWN, 500: UNKNOWN, 200: SETTLED},
}  # fmt: skip


@pytest.mark.parametrize(
    ("vendor", "status", "outcome"),
    [(v, s, o) for v, table in VENDOR_STATUSES.items() for s, o in table.items()],
)
def test_each_vendor_says_which_of_its_answers_mean_not_processed(
    vendor: str, status: int, outcome: str
) -> None:
    assert VENDORS[vendor].settlement(Delivery(vendor_status=status)) == Settlement(outcome)


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_without_an_answer_only_a_request_that_never_left_is_released(vendor: str) -> None:
    v = VENDORS[vendor]
    assert v.settlement(Delivery(vendor_status=None, never_sent=True)) is Settlement.RELEASED
    assert v.settlement(Delivery(vendor_status=None, never_sent=False)) is Settlement.UNKNOWN
