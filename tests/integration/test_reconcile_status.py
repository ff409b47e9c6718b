"""tollgate.reconcile.status: what a VaultKey's and a SpendPolicy's status say, from the reconcile
outcome and what a real redis-server holds (spend today, last decision); conditions and Events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.builders import NOW, grant, spend_policy, vault_key

from tollgate.reconcile.policies import InvalidPolicy
from tollgate.reconcile.status import (
    KeyReport,
    key_report,
    read_key_report,
    spend_policy_status,
    transition,
    usd,
    vault_key_status,
)
from tollgate.reconcile.vault_keys import Outcome
from tollgate.store.base import LastDecision
from tollgate.store.redis import RedisStore

KEY = "agents/support-bot"
READY = Outcome("Ready", "bound to SpendPolicy agents/refunds", "v1")


def status_of(
    report: KeyReport, previous: list[dict[str, Any]] | None = None, now: datetime = NOW
) -> dict[str, Any]:
    return vault_key_status(
        report,
        generation=3,
        token_secret_name="support-bot-vault-token",
        token_rotation="1",
        previous_conditions=previous,
        now=now,
    )


async def test_a_ready_key_reports_its_spend_today_and_its_last_decision_from_redis(
    store: RedisStore,
) -> None:
    g = grant()
    await store.put_grant(g)
    at_ms = int(NOW.timestamp() * 1000)
    await store.commit(KEY, g.version, "stripe", "20261125", 12_500_000, g.daily_cap_micro_usd,
                       decision_id="dec_1", at_ms=at_ms)  # fmt: skip

    report = await read_key_report(store, KEY, READY, NOW)
    status = status_of(report)

    assert status["state"] == "Ready"
    assert (status["day"], status["dailyCapUsd"], status["spentTodayUsd"], status["remainingTodayUsd"]) == (
        "2026-11-25",
        "100.00",
        "12.50",
        "87.50",
    )
    assert status["lastDecision"] == {
        "rule": "tollgate_allowed",
        "decisionId": "dec_1",
        "at": "2026-11-25T12:00:00.000Z",
    }
    assert status["grantVersion"] == g.version
    assert (status["tokenSecretName"], status["tokenRotation"], status["observedGeneration"]) == (
        "support-bot-vault-token",
        "1",
        3,
    )
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Ready": ("True", "Ready"),
        "Expired": ("False", "NotExpired"),
        "Revoked": ("False", "NotRevoked"),
        "Suspended": ("False", "NotSuspended"),
    }


async def test_a_grant_missing_from_redis_shows_as_revoked_until_the_resync(store: RedisStore) -> None:
    report = await read_key_report(store, KEY, READY, NOW)
    assert report.state == "Revoked" and "resync" in report.message
    status = status_of(report)
    assert status["spentTodayUsd"] is None and status["lastDecision"] is None
    assert {c["type"]: c["status"] for c in status["conditions"]}["Revoked"] == "True"


@pytest.mark.parametrize(
    ("key_spec", "policy_spec", "state"),
    [
        pytest.param({"suspended": True}, {}, "Suspended", id="suspended key → Suspended"),
        pytest.param({"expiresAt": "2026-11-25T11:00:00Z"}, {}, "Expired", id="key past expiresAt → Expired"),
        pytest.param(
            {}, {"expiresAt": "2026-11-25T12:00:00Z"}, "Expired", id="policy expiring now → Expired"
        ),
        pytest.param(
            {"suspended": True, "expiresAt": "2026-01-01T00:00:00Z"},
            {},
            "Expired",
            id="expired wins, as in ext_authz",
        ),
        pytest.param({"expiresAt": "2026-11-26T00:00:00Z"}, {}, "Ready", id="expiring later → Ready"),
    ],
)
def test_the_state_is_what_ext_authz_will_answer_at_that_moment(
    key_spec: dict[str, object], policy_spec: dict[str, object], state: str
) -> None:
    g = grant(spend_policy(**policy_spec), vault_key(**key_spec))
    assert key_report(READY, g, 0, None, NOW).state == state


@pytest.mark.parametrize("state", ["PolicyMissing", "SecretMissing", "Revoked", "Invalid"])
def test_a_key_refused_by_reconcile_says_so_and_counts_as_revoked(state: str) -> None:
    report = key_report(Outcome(state, f"because {state}"), None, 0, None, NOW)
    status = status_of(report)
    assert (status["state"], status["message"]) == (state, f"because {state}")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Revoked"]["status"] == "True" and conditions["Revoked"]["reason"] == state
    assert conditions["Ready"]["status"] == "False" and conditions["Ready"]["message"] == f"because {state}"


def test_a_condition_keeps_its_transition_time_until_its_status_changes() -> None:
    first = status_of(key_report(READY, grant(), 0, None, NOW))["conditions"]
    later = NOW + timedelta(minutes=5)
    same = status_of(key_report(READY, grant(), 0, None, later), first, later)["conditions"]
    assert [c["lastTransitionTime"] for c in same] == [c["lastTransitionTime"] for c in first]
    suspended = grant(key=vault_key(suspended=True))
    changed = {
        c["type"]: c["lastTransitionTime"]
        for c in status_of(key_report(READY, suspended, 0, None, later), first, later)["conditions"]
    }
    assert changed["Ready"] == changed["Suspended"] == "2026-11-25T12:05:00Z"
    assert changed["Expired"] == "2026-11-25T12:00:00Z"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param("Ready", "Ready", None, id="no change → no Event"),
        pytest.param(None, "Ready", ("Normal", "Ready"), id="first Ready → Normal"),
        pytest.param("Ready", "Suspended", ("Normal", "Suspended"), id="suspended → Normal"),
        pytest.param("Ready", "Expired", ("Warning", "Expired"), id="expired → Warning"),
        pytest.param("Ready", "PolicyMissing", ("Warning", "PolicyMissing"), id="policy gone → Warning"),
        pytest.param("Ready", "Revoked", ("Warning", "Revoked"), id="revoked → Warning"),
    ],
)
def test_a_change_of_state_is_an_event(old: str | None, new: str, expected: tuple[str, str] | None) -> None:
    event = transition(old, new, "why")
    assert (event and (event.type, event.reason)) == expected


def test_a_policy_reports_ready_expired_or_invalid_with_its_bound_keys() -> None:
    ready = spend_policy_status(spend_policy(), bound_keys=2, generation=1, previous_conditions=None, now=NOW)
    assert (ready["state"], ready["boundKeys"], ready["message"]) == ("Ready", 2, "2 VaultKey(s) bound")
    past = spend_policy(expiresAt="2026-11-01T00:00:00Z")
    expired = spend_policy_status(past, bound_keys=1, generation=1, previous_conditions=None, now=NOW)
    assert expired["state"] == "Expired"
    assert {c["type"]: c["status"] for c in expired["conditions"]} == {"Ready": "False", "Expired": "True"}
    invalid = spend_policy_status(
        InvalidPolicy(["spec.allow: too short"]),
        bound_keys=0,
        generation=1,
        previous_conditions=None,
        now=NOW,
    )
    assert (invalid["state"], invalid["message"]) == ("Invalid", "spec.allow: too short")


def test_amounts_are_decimal_strings_of_dollars() -> None:
    assert [usd(0), usd(12_500_000), usd(8_300), usd(1)] == ["0.00", "12.50", "0.0083", "0.000001"]


def test_the_day_is_the_policys_local_day() -> None:
    tokyo = grant(spend_policy(timeZone="Asia/Tokyo"))
    late = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)  # already the 26th in Tokyo
    assert key_report(READY, tokyo, 0, None, late).day == "2026-11-26"


def test_a_last_decision_time_keeps_its_milliseconds() -> None:
    last = LastDecision("tollgate_cap_exceeded", "dec_9", int(NOW.timestamp() * 1000) + 42)
    status = status_of(key_report(READY, grant(), 0, last, NOW))
    assert status["lastDecision"]["at"] == "2026-11-25T12:00:00.042Z"
