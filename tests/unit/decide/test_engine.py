"""THE table: one row per rule in the documented order. Each row breaks its rule *and every later
one*, so the row only passes if the first failing rule is the one that answers."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.builders import NOW, TOKEN, call, grant, spend_policy, vault_key

from tollgate.credentials import token_digest
from tollgate.decide.engine import Subject, after_reserve, decide, decide_from_facts, over_budget
from tollgate.decide.rules import Rule
from tollgate.decide.verdict import Allow, Deny, Pending
from tollgate.money import Money
from tollgate.policy.grant import Grant
from tollgate.vendors.base import Facts, Invalid, Unpriced, Usage
from tollgate.vendors.stripe import STRIPE
from tollgate.vendors.twilio import TWILIO

POLICY = dict(
    customers=["cus_A"],
    connectedAccounts=["acct_ok"],
    params=[{"field": "reason", "op": "in", "value": ["duplicate", "requested_by_customer"]}],
    currencies=[{"code": "usd"}, {"code": "eur", "usdRate": "1.10"}],
)
GOOD = {"charge": "ch_1", "amount": "500", "reason": "duplicate"}
GOOD_FACTS = Facts(cost=Money.minor(500, "usd"), customers=frozenset({"cus_A"}), customer_related=True)


def subject(
    g: Grant | None,
    *,
    params: dict | None = None,
    path: str = "/v1/refunds",
    method: str = "POST",
    token: str | None = TOKEN,
    bound: bool = True,
    accounts: frozenset = frozenset(),
    parse_error: str | None = None,
    now=NOW,
    vendor: str = "stripe",
) -> Subject:
    c = replace(
        call(method, path, params if params is not None else GOOD), parse_error=parse_error, vendor=vendor
    )
    return Subject(
        call=c,
        grant=g,
        token_sha256=token_digest(token) if token else None,
        bound=bound,
        endpoint=STRIPE.match(method, path),
        accounts=accounts,
        now=now,
    )


def run(s: Subject, facts: Any = GOOD_FACTS):
    """As the check runs it: rules 1–5, then 6–7 alone; and the whole decision must say the same."""
    first = decide(s)
    if not isinstance(first, Pending):
        return first
    final = decide_from_facts(s, facts)
    assert final == decide(s, facts)
    return final


G = grant(spend_policy(**POLICY))
EXPIRED = grant(spend_policy(**POLICY), vault_key(expiresAt="2026-11-01T00:00:00Z"))
POLICY_EXPIRED = grant(spend_policy(**POLICY, expiresAt="2026-11-25T11:59:59Z"))
SUSPENDED = grant(spend_policy(**POLICY), vault_key(suspended=True))
BAD_FACTS = Facts(cost=Money.minor(1, "gbp"), customers=frozenset({"cus_Z"}), customer_related=True)

SID = "AC" + "0" * 32
SMS = f"/2010-04-01/Accounts/{SID}/Messages.json"
TWILIO_G = grant(
    spend_policy(vendor="twilio", allow=[f"POST {SMS}"], connectedAccounts=[SID], recipients=["+1", "+44"])
)


def sms_to(number: str, *, cost: Money | None = None) -> Facts:
    """An SMS to `number`; `cost` adds money in a currency, to break rule 7 as well."""
    usage = (Usage("sms_segment", 1, number, "price it in spec.prices"),)
    return Facts(cost=cost, recipients=frozenset({number}), usage=usage)


def twilio_subject(g: Grant) -> Subject:
    c = replace(call("POST", SMS, {"To": "+33612345678", "Body": "hi"}), vendor="twilio")
    return Subject(c, g, token_digest(TOKEN), True, TWILIO.match("POST", SMS), frozenset({SID}), NOW)


@pytest.mark.parametrize(
    ("s", "facts", "rule"),
    [
        pytest.param(
            subject(G, token=None, path="/v1/secret"), BAD_FACTS, Rule.KEY_UNKNOWN, id="1 no key → 401"
        ),
        pytest.param(
            subject(G, bound=False, path="/v1/secret"), BAD_FACTS, Rule.KEY_UNKNOWN, id="1 unknown key → 401"
        ),
        pytest.param(subject(None, path="/v1/secret"), BAD_FACTS, Rule.KEY_REVOKED, id="1 revoked key → 401"),
        pytest.param(
            subject(G, token="tgk_rotated_away", path="/v1/secret"),
            BAD_FACTS,
            Rule.KEY_REVOKED,
            id="1 rotated-away token → 401",
        ),
        pytest.param(
            subject(EXPIRED, path="/v1/secret"), BAD_FACTS, Rule.KEY_EXPIRED, id="2 expired key → 401"
        ),
        pytest.param(
            subject(POLICY_EXPIRED, path="/v1/secret"),
            BAD_FACTS,
            Rule.KEY_EXPIRED,
            id="2 expired policy → 401",
        ),
        pytest.param(
            subject(SUSPENDED, path="/v1/secret"), BAD_FACTS, Rule.KEY_SUSPENDED, id="2 suspended → 401"
        ),
        pytest.param(
            subject(G, path="/v1/secret", accounts=frozenset({"acct_bad"}), params={}),
            BAD_FACTS,
            Rule.ENDPOINT_NOT_ALLOWED,
            id="3 path not allowed → 403",
        ),
        pytest.param(
            subject(G, method="GET", path="/v1/refunds", accounts=frozenset({"acct_bad"})),
            BAD_FACTS,
            Rule.ENDPOINT_NOT_ALLOWED,
            id="3 method not allowed → 403",
        ),
        pytest.param(
            subject(
                G, parse_error="parameter 'amount' is given more than once", accounts=frozenset({"acct_bad"})
            ),
            BAD_FACTS,
            Rule.REQUEST_INVALID,
            id="3 unreadable body → 400",
        ),
        pytest.param(
            subject(G, accounts=frozenset({"acct_bad"}), params={"charge": "ch_1"}),
            BAD_FACTS,
            Rule.ACCOUNT_NOT_ALLOWED,
            id="4 foreign Stripe-Account → 403",
        ),
        pytest.param(
            subject(G, params={"charge": "ch_1", "reason": "fraudulent"}),
            BAD_FACTS,
            Rule.PARAM_RULE_BROKEN,
            id="5 parameter rule broken → 403",
        ),
        pytest.param(
            subject(G, params={"charge": "ch_1"}),
            BAD_FACTS,
            Rule.PARAM_RULE_BROKEN,
            id="5 rule on an absent parameter → 403",
        ),
        pytest.param(
            subject(G),
            Invalid("a refund needs exactly one of 'charge' or 'payment_intent'"),
            Rule.REQUEST_INVALID,
            id="5b incomplete request → 400",
        ),
        pytest.param(subject(G), BAD_FACTS, Rule.CUSTOMER_OUT_OF_SCOPE, id="6 customer out of scope → 403"),
        pytest.param(
            subject(G),
            Facts(cost=Money.minor(1, "gbp"), unscoped="the call names no customer", customer_related=True),
            Rule.CUSTOMER_OUT_OF_SCOPE,
            id="6 no customer under a customer scope → 403",
        ),
        pytest.param(
            subject(G),
            replace(BAD_FACTS, customers=frozenset({"cus_A"})),
            Rule.CURRENCY_NOT_ALLOWED,
            id="7 currency not allowed → 403",
        ),
        pytest.param(
            twilio_subject(TWILIO_G),
            sms_to("+33612345678", cost=Money.minor(1, "gbp")),
            Rule.RECIPIENT_OUT_OF_SCOPE,
            id="6 recipient out of scope (and unpriced) → 403, scope before price",
        ),
        pytest.param(
            twilio_subject(TWILIO_G),
            sms_to("+18765550100", cost=Money.minor(1, "gbp")),
            Rule.ENDPOINT_UNPRICED,
            id="6b in scope, destination unpriced → 403",
        ),
    ],
)
def test_the_first_failing_rule_answers(s: Subject, facts: Any, rule: Rule) -> None:
    verdict = run(s, facts)
    assert isinstance(verdict, Deny), verdict
    assert verdict.rule is rule
    assert verdict.status == rule.status


def test_a_call_that_breaks_nothing_is_allowed_at_its_cost_in_micro_usd() -> None:
    assert run(subject(G)) == Allow(cost_micro_usd=5_000_000)


def test_foreign_currency_is_converted_at_the_policy_rate() -> None:
    facts = Facts(cost=Money.minor(1000, "eur"), customers=frozenset({"cus_A"}), customer_related=True)
    assert run(subject(G), facts) == Allow(cost_micro_usd=11_000_000)


def test_calls_that_move_no_money_cost_nothing() -> None:
    g = grant(spend_policy())
    v = run(subject(g, method="GET", path="/v1/charges/ch_1", params={}), Facts(cost=None))
    assert v == Allow(cost_micro_usd=0)


def test_unknown_writes_are_refused_even_when_the_policy_allows_them() -> None:
    g = grant(spend_policy(allow=["POST /v1/**"]))
    v = run(subject(g, path="/v1/no_such_things", params={}))
    assert isinstance(v, Deny) and v.rule is Rule.ENDPOINT_UNPRICED


def test_unpriced_facts_are_refused() -> None:
    g = grant(spend_policy(allow=["POST /v1/subscriptions/*"]))
    v = run(subject(g, path="/v1/subscriptions/sub_1", params={}), Unpriced("changing items bills"))
    assert isinstance(v, Deny) and v.rule is Rule.ENDPOINT_UNPRICED


def test_no_customer_scope_means_any_customer() -> None:
    g = grant(spend_policy())
    v = run(subject(g, params={"charge": "ch_1"}), replace(GOOD_FACTS, customers=frozenset({"cus_Z"})))
    assert v == Allow(cost_micro_usd=5_000_000)


def test_without_connected_accounts_listed_no_stripe_account_header_is_allowed() -> None:
    g = grant(spend_policy())
    v = run(subject(g, params={"charge": "ch_1"}, accounts=frozenset({"acct_any"})))
    assert isinstance(v, Deny) and v.rule is Rule.ACCOUNT_NOT_ALLOWED


def test_expiry_is_inclusive_of_the_instant() -> None:
    g = grant(spend_policy(), vault_key(expiresAt="2026-11-25T12:00:00Z"))
    v = run(subject(g, params={"charge": "ch_1"}))
    assert isinstance(v, Deny) and v.rule is Rule.KEY_EXPIRED
    v = run(subject(g, params={"charge": "ch_1"}, now=NOW - timedelta(seconds=1)))
    assert isinstance(v, Allow)


def test_messages_say_which_rule_denied_and_how_to_fix_it() -> None:
    v = run(subject(G, path="/v1/payouts", params={}))
    assert isinstance(v, Deny)
    assert "agents/refunds" in v.message and "POST /v1/payouts" in v.message and "spec.allow" in v.message


def test_cap_exceeded_after_reserve_says_spent_cap_and_reset_and_is_not_a_card_decline() -> None:
    v = after_reserve(G, Allow(cost_micro_usd=5_000_000), False, 98_000_000, NOW)
    assert isinstance(v, Deny) and v.rule is Rule.CAP_EXCEEDED and v.status == 402
    assert "$98.00 of $100.00" in v.message
    assert "$5.00" in v.message
    assert "2026-11-26T00:00:00+00:00" in v.message
    assert "not a card decline" in v.message


def test_a_spent_shared_budget_names_the_budget_its_spend_cap_and_its_own_reset() -> None:
    from tests.builders import spend_budget

    g = grant(budget=spend_budget(dailyCapUsd="2000", timeZone="America/New_York"))
    v = over_budget(g, Allow(cost_micro_usd=5_000_000), 1_998_000_000, NOW)
    assert isinstance(v, Deny) and v.rule is Rule.BUDGET_EXCEEDED and v.status == 402
    assert "SpendBudget agents/support" in v.message and "$1998.00 of $2000.00" in v.message
    assert "2026-11-26T05:00:00+00:00" in v.message  # midnight in New York, not the policy's UTC
    assert "not a card decline" in v.message
    shadow = over_budget(
        grant(spend_policy(mode="shadow"), budget=spend_budget()), Allow(cost_micro_usd=5), 50_000_000, NOW
    )
    assert isinstance(shadow, Allow) and shadow.shadow_denial is not None and shadow.cost_micro_usd == 0
    assert shadow.shadow_denial.rule is Rule.BUDGET_EXCEEDED


def test_a_successful_reservation_keeps_the_allow() -> None:
    allow = Allow(cost_micro_usd=5_000_000)
    assert after_reserve(G, allow, True, 5_000_000, NOW) is allow


def test_shadow_mode_allows_but_carries_the_denial() -> None:
    g = grant(spend_policy(mode="shadow"))
    v = run(subject(g, path="/v1/payouts", params={}))
    assert isinstance(v, Allow) and v.shadow_denial is not None
    assert v.shadow_denial.rule is Rule.ENDPOINT_NOT_ALLOWED
    cap = after_reserve(g, Allow(cost_micro_usd=5), False, 100, NOW)
    assert isinstance(cap, Allow) and cap.shadow_denial is not None and cap.cost_micro_usd == 0


def test_a_key_is_refused_on_another_vendors_route_before_any_other_rule() -> None:
    v = run(subject(grant(spend_policy()), vendor="resend", path="/secret", accounts=frozenset({"acct_bad"})))
    assert isinstance(v, Deny) and v.rule is Rule.KEY_WRONG_VENDOR and v.status == 401
    assert "is for stripe, not resend" in v.message


def test_shadow_mode_never_forwards_a_request_it_cannot_read_or_a_key_off_its_vendor() -> None:
    g = grant(spend_policy(mode="shadow"))
    unreadable = run(subject(g, parse_error="the body is not UTF-8"))
    assert isinstance(unreadable, Deny) and unreadable.rule is Rule.REQUEST_INVALID
    elsewhere = run(subject(g, vendor="twilio"))
    assert isinstance(elsewhere, Deny) and elsewhere.rule is Rule.KEY_WRONG_VENDOR


def test_shadow_mode_never_relaxes_rules_about_the_key() -> None:
    g = grant(spend_policy(mode="shadow"), vault_key(suspended=True))
    v = run(subject(g))
    assert isinstance(v, Deny) and v.rule is Rule.KEY_SUSPENDED


def test_the_day_window_follows_the_policy_time_zone() -> None:
    utc = grant(spend_policy())
    tokyo = grant(spend_policy(timeZone="Asia/Tokyo"))
    late = NOW.replace(hour=23)  # 23:00 UTC is 08:00 next day in Tokyo
    assert utc.day_key(late) == "20261125"
    assert tokyo.day_key(late) == "20261126"
    assert tokyo.day_ends_at(late).isoformat() == "2026-11-26T15:00:00+00:00"


def test_the_day_turns_at_local_midnight_to_the_microsecond() -> None:
    ny = grant(spend_policy(timeZone="America/New_York"))
    midnight = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)  # 00:00 in New York (EST, UTC-5)
    assert ny.day_key(midnight - timedelta(microseconds=1)) == "20261125"
    assert ny.day_key(midnight) == "20261126"
    # The day summer time ends (2026-11-01) still starts in EDT, UTC-4.
    assert ny.day_key(datetime(2026, 11, 1, 3, 59, 59, 999999, tzinfo=UTC)) == "20261031"
    assert ny.day_key(datetime(2026, 11, 1, 4, 0, tzinfo=UTC)) == "20261101"
