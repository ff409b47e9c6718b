"""The verdicts built from commit.lua's answers beyond the cap: loop breaker (rule 8), replays and
reused idempotency keys, in enforce and shadow mode; and the request fingerprint. Pure."""

from __future__ import annotations

from tests.builders import NOW, call, grant, spend_policy

from tollgate.decide.engine import key_reused, loop_broken, replayed
from tollgate.decide.idempotency import fingerprint
from tollgate.decide.rules import Rule
from tollgate.decide.verdict import Allow, Deny

BREAKER = {"calls": 20, "per": "1m"}
G = grant(spend_policy(loopBreaker=BREAKER))
SHADOW = grant(spend_policy(loopBreaker=BREAKER, mode="shadow"))


def test_the_loop_breaker_is_a_429_that_says_when_to_try_again() -> None:
    v = loop_broken(G, 12_300, NOW)
    assert isinstance(v, Deny) and v.rule is Rule.LOOP_BREAKER and v.status == 429
    assert v.retry_after_s == 13  # rounded up: trying at 12 s would still be refused
    assert "20 money-moving calls in the last 1 min" in v.message
    assert "Try again in 13 s (after 2026-11-25T12:00:13+00:00)" in v.message
    assert "spec.loopBreaker" in v.message and "agents/refunds" in v.message


def test_the_loop_breaker_never_says_retry_in_zero_seconds() -> None:
    v = loop_broken(G, 1, NOW)
    assert isinstance(v, Deny) and v.retry_after_s == 1


def test_a_shadow_policy_lets_the_loop_breaker_pass_but_records_it_and_reserves_nothing() -> None:
    v = loop_broken(SHADOW, 5_000, NOW)
    assert isinstance(v, Allow) and v.cost_micro_usd == 0
    assert v.shadow_denial is not None and v.shadow_denial.rule is Rule.LOOP_BREAKER


def test_a_replay_reserves_nothing_and_says_so() -> None:
    v = replayed(Allow(cost_micro_usd=15_000_000))
    assert v == Allow(cost_micro_usd=0, replay=True)


def test_a_reused_key_is_refused_like_the_vendor_would_unless_shadowed() -> None:
    v = key_reused(G, "ik_" + "x" * 300)
    assert isinstance(v, Deny) and v.rule is Rule.IDEMPOTENCY_KEY_REUSED and v.status == 400
    assert "first used with other parameters" in v.message and len(v.message) < 300
    s = key_reused(SHADOW, "ik_1")
    assert isinstance(s, Allow) and s.shadow_denial is not None
    assert s.shadow_denial.rule is Rule.IDEMPOTENCY_KEY_REUSED


def test_the_fingerprint_ignores_parameter_order_and_sees_every_difference() -> None:
    a = call(params={"charge": "ch_1", "amount": "500"})
    same = call(params={"amount": "500", "charge": "ch_1"})
    assert fingerprint(a, []) == fingerprint(same, [])
    assert fingerprint(a, []) != fingerprint(call(params={"charge": "ch_1", "amount": "501"}), [])
    assert fingerprint(a, []) != fingerprint(call(path="/v1/payouts", params=dict(a.params)), [])
    assert fingerprint(a, []) != fingerprint(a, ["acct_1"])  # the same key under another account
