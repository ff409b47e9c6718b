"""The decision, in the documented order; the first failing rule answers. Pure.

  1 key unknown / revoked / for another vendor → 401      2 key expired / suspended → 401
  3 request unreadable → 400; endpoint not allowed (or unpriceable) → 403
  4 connected account not allowed → 403       5 parameter rule broken → 403
  6 customer / recipient out of scope → 403   6b usage the policy does not price → 403
  7 currency not allowed → 403               7b approval above spec.approval.aboveUsd → 403
  8 loop breaker → 429 (loop_broken)          9 daily cap would be exceeded → 402 (after_reserve)
  9b the shared budget's cap would be exceeded → 402 (over_budget)
  10 allow: reserve the cost, swap the key.

`decide` runs rules 1–5 from the request alone and returns Pending when it needs facts (which may
mean reading objects from the vendor); called again with facts it finishes 6–7 (`decide_from_facts` runs
only 6–7, for a subject already past 1–5). Rule 7b asks whether
the priced call needs a person's approval (`needs_approval`); the approval's state lives in Redis and is
read, created or consumed by the commit (the approval functions below turn its answer into a verdict).
Rules 8 and 9 count what other calls did, so they run atomically in Redis (store/lua/commit.lua) in the
same step that reserves; `loop_broken` and `after_reserve` turn its answer into the verdict. Before either, a retry
under an idempotency key already counted passes as a replay that reserves nothing (`replayed`), and a
reused key with other parameters is refused as the vendor would refuse it (`key_reused`, 400).
Shadow policies turn every denial but those about the key itself into an Allow that carries the
denial for the audit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from tollgate.credentials import same_digest
from tollgate.decide.call import Call
from tollgate.decide.rules import Rule
from tollgate.decide.verdict import Allow, Deny, Pending, Verdict
from tollgate.money import format_usd, to_micro_usd
from tollgate.policy.grant import Grant
from tollgate.policy.spend_policy import Mode
from tollgate.record import record
from tollgate.vendors.base import Endpoint, Facts, Invalid, Unpriced


@record
class Subject:
    """Everything rules 1–5 look at."""

    call: Call
    grant: Grant | None
    token_sha256: str | None  # digest of the presented token; None when no token was presented
    bound: bool  # the token digest is known to the store (it may still be revoked)
    endpoint: Endpoint
    accounts: frozenset[str]
    now: datetime


def decide(s: Subject, facts: Facts | Invalid | Unpriced | None = None) -> Verdict:
    for rule in _REQUEST_RULES:
        if deny := rule(s):
            # A request Tollgate cannot read exactly is refused in shadow mode too: what would be
            # recorded as its cost and scope is not what the vendor would act on.
            return deny if rule is _readable else _shadow(s.grant, deny)
    if facts is None:
        return Pending()
    return decide_from_facts(s, facts)


def decide_from_facts(s: Subject, facts: Facts | Invalid | Unpriced) -> Allow | Deny:
    """Rules 6–7 alone, for a subject that rules 1–5 already passed (`decide(s)` was Pending): the
    check does not run them twice."""
    assert s.grant is not None
    if isinstance(facts, Invalid):
        return _shadow(s.grant, Deny(Rule.REQUEST_INVALID, facts.message, facts.param))
    if isinstance(facts, Unpriced):
        return _shadow(s.grant, Deny(Rule.ENDPOINT_UNPRICED, facts.message))
    # Scope before price: a number outside spec.recipients is out of scope whether or not it is priced.
    if deny := (
        _customer_scope(s.grant, facts)
        or _recipient_scope(s.grant, facts)
        or _usage_unpriced(s.grant, facts)
        or _currency(s.grant, facts)
    ):
        return _shadow(s.grant, deny)
    return Allow(cost_micro_usd=cost_micro_usd(s.grant, facts))


def after_reserve(
    grant: Grant, allow: Allow, reserved: bool, spent_micro_usd: int, now: datetime
) -> Allow | Deny:
    """Rule 9: the atomic reservation's answer, as a verdict."""
    if reserved:
        return allow
    cap = grant.daily_cap_micro_usd
    deny = Deny(
        Rule.CAP_EXCEEDED,
        f"Daily spend cap reached for vault key {grant.key_id}: {format_usd(spent_micro_usd)} of "
        f"{format_usd(cap)} spent today and this call would add {format_usd(allow.cost_micro_usd)}. "
        f"The cap resets at {grant.day_ends_at(now).isoformat()}. This is a Tollgate spend limit "
        f"(SpendPolicy {grant.policy_id}), not a card decline; do not retry before the reset.",
    )
    return _shadow(grant, deny, cost=0)


def over_budget(grant: Grant, allow: Allow, budget_spent_micro_usd: int, now: datetime) -> Allow | Deny:
    """Rule 9b: within the key's cap, but the shared budget (SpendBudget) it is under is spent."""
    b = grant.budget
    assert b is not None
    deny = Deny(
        Rule.BUDGET_EXCEEDED,
        f"Daily cap of SpendBudget {b.id} reached: {format_usd(budget_spent_micro_usd)} of "
        f"{format_usd(b.daily_cap_micro_usd)} spent today by all keys under it and this call would add "
        f"{format_usd(allow.cost_micro_usd)}. The budget resets at {b.day_ends_at(now).isoformat()}. This is "
        f"a Tollgate spend limit shared by vault key {grant.key_id} (SpendPolicy {grant.policy_id}) and "
        "others, not a card decline; do not retry before the reset.",
    )
    return _shadow(grant, deny, cost=0)


def loop_broken(grant: Grant, retry_after_ms: int, now: datetime) -> Allow | Deny:
    """Rule 8: the key made its most money-moving calls in the rolling window."""
    lb = grant.loop_breaker
    assert lb is not None
    wait_s = max(1, -(-retry_after_ms // 1000))
    at = (now + timedelta(seconds=wait_s)).replace(microsecond=0)
    deny = Deny(
        Rule.LOOP_BREAKER,
        f"Loop breaker: vault key {grant.key_id} made {lb.calls} money-moving calls in the last "
        f"{_window(lb.window_ms)}, the most SpendPolicy {grant.policy_id} allows (spec.loopBreaker). "
        f"Try again in {wait_s} s (after {at.isoformat()}); if this agent is retrying in a loop, stop it.",
        retry_after_s=wait_s,
    )
    return _shadow(grant, deny)


def replayed(allow: Allow) -> Allow:
    """A retry of a call already counted: the vendor replays the first result, so nothing is reserved."""
    return Allow(cost_micro_usd=0, shadow_denial=allow.shadow_denial, replay=True)


def key_reused(grant: Grant, idempotency_key: str) -> Allow | Deny:
    deny = Deny(
        Rule.IDEMPOTENCY_KEY_REUSED,
        f"Idempotency key {idempotency_key[:64]!r} was first used with other parameters; the vendor "
        "would refuse this request too. Send a new idempotency key for a new request.",
        "idempotency_key",
    )
    return _shadow(grant, deny)


# ---- rule 7b: a person approves calls above spec.approval.aboveUsd ----------------------------------

# A key's approvals waiting for a person at once: an agent that calls again with a new Idempotency-Key
# each time is told to wait, instead of flooding the people deciding, the alerts and the cluster.
MAX_WAITING_APPROVALS = 10


def needs_approval(grant: Grant, call: Call, allow: Allow) -> bool:
    """The call passed rules 1–7 and costs more than the policy lets pass without a person."""
    a = grant.approval
    return (
        a is not None
        and allow.shadow_denial is None
        and a.required(call.method, call.path, allow.cost_micro_usd)
    )


def _above(grant: Grant, allow: Allow) -> str:
    assert grant.approval is not None
    return (
        f"This call costs {format_usd(allow.cost_micro_usd)}, more than the "
        f"{format_usd(grant.approval.above_micro_usd)} SpendPolicy {grant.policy_id} lets pass without a "
        "person's approval (spec.approval), so it was not sent."
    )


def approval_needs_key(grant: Grant, allow: Allow) -> Allow | Deny:
    """An approval is for one request, named by its idempotency key: a call without one cannot get one."""
    deny = Deny(
        Rule.APPROVAL_REQUIRED,
        f"{_above(grant, allow)} An approval is tied to the call's Idempotency-Key and this call has none: "
        "send it with an Idempotency-Key header, then retry with the same key once approved.",
        "idempotency_key",
    )
    return _shadow(grant, deny)


def approval_required(
    grant: Grant, allow: Allow, approval_id: str | None = None, expires_at: datetime | None = None
) -> Allow | Deny:
    """Pending: the person has not decided yet (a shadow policy records that it would have waited)."""
    waits = f" until {expires_at.replace(microsecond=0).isoformat()}" if expires_at else ""
    deny = Deny(
        Rule.APPROVAL_REQUIRED,
        f"{_above(grant, allow)} Approval {approval_id} is pending{waits}: retry with the same "
        "Idempotency-Key once approved; do not retry before, and do not change the parameters (that is "
        "a new request, needing a new approval).",
    )
    return _shadow(grant, deny)


def approvals_waiting(grant: Grant, allow: Allow, waiting: int) -> Allow | Deny:
    """No new approval: the key has the most already waiting (an agent asking again with new keys)."""
    deny = Deny(
        Rule.APPROVAL_REQUIRED,
        f"{_above(grant, allow)} Vault key {grant.key_id} already has {waiting} approvals waiting for a "
        "person, so no new one was asked for. Retry one of those calls with its own Idempotency-Key once it "
        "is approved, or try again after they expire; do not send this call again with a new key.",
    )
    return _shadow(grant, deny)


def approval_rejected(grant: Grant, approval_id: str, by: str) -> Allow | Deny:
    deny = Deny(
        Rule.APPROVAL_REJECTED,
        f"Approval {approval_id} for this call was rejected{f' by {by}' if by else ''}; it will not be sent. "
        "Do not retry it.",
    )
    return _shadow(grant, deny)


def approval_expired(grant: Grant, approval_id: str) -> Allow | Deny:
    assert grant.approval is not None
    deny = Deny(
        Rule.APPROVAL_EXPIRED,
        f"Approval {approval_id} expired before this call was approved and sent (SpendPolicy "
        f"{grant.policy_id} spec.approval.ttl: {_window(grant.approval.ttl_ms)}). To ask again, send the "
        "call with a new Idempotency-Key.",
    )
    return _shadow(grant, deny)


def approval_used(grant: Grant, approval_id: str) -> Allow | Deny:
    deny = Deny(
        Rule.APPROVAL_USED,
        f"Approval {approval_id} was already used: one approval lets one call through. To ask again, send "
        "the call with a new Idempotency-Key.",
    )
    return _shadow(grant, deny)


def _window(ms: int) -> str:
    s = ms // 1000
    if s % 3600 == 0:
        return f"{s // 3600} h"
    return f"{s // 60} min" if s % 60 == 0 else f"{s} s"


def cost_micro_usd(grant: Grant, facts: Facts) -> int:
    units = 0
    for u in facts.usage:
        price = grant.unit_price(u.unit, u.destination)
        assert price is not None, "no unit without a price gets this far"
        units += u.quantity * price
    if facts.cost is None:
        return units
    rate = grant.usd_rate(facts.cost.currency)
    assert rate is not None, "rule 7 lets no currency without a rate through"
    return units + to_micro_usd(facts.cost, rate)


# ---- rules 1–5: from the request alone ------------------------------------------------------------


def _key_known(s: Subject) -> Deny | None:
    if s.token_sha256 is None:
        return Deny(
            Rule.KEY_UNKNOWN,
            "No vault key was presented. Send the token from your VaultKey Secret as the API key.",
        )
    if not s.bound:
        return Deny(
            Rule.KEY_UNKNOWN,
            "Tollgate does not know this vault key. Use the token from your VaultKey Secret.",
        )
    if s.grant is None or not same_digest(s.grant.token_sha256, s.token_sha256):
        return Deny(
            Rule.KEY_REVOKED,
            "This vault key has been revoked (its VaultKey was deleted or rotated, or its SpendPolicy removed). "
            "Retrying will not help; ask an operator for a new key.",
        )
    if s.grant.vendor != s.call.vendor:
        # A key is bound to its policy's vendor: on any other route its vendor key would be sent to a
        # stranger, so the call is refused like an unknown key and nothing is forwarded.
        return Deny(
            Rule.KEY_WRONG_VENDOR,
            f"Vault key {s.grant.key_id} is for {s.grant.vendor}, not {s.call.vendor or 'this route'}. "
            f"Send it only to the gateway's {s.grant.vendor} prefix.",
        )
    return None


def _key_current(s: Subject) -> Deny | None:
    g = s.grant
    assert g is not None
    if g.expires_at is not None and s.now >= g.expires_at:
        return Deny(
            Rule.KEY_EXPIRED,
            f"Vault key {g.key_id} expired at {g.expires_at.isoformat()} ({g.expired_by} expiresAt). "
            "Ask an operator to extend it or issue a new key.",
        )
    if g.suspended:
        return Deny(
            Rule.KEY_SUSPENDED,
            f"Vault key {g.key_id} is suspended (VaultKey spec.suspended: true). Ask an operator to resume it.",
        )
    return None


def _endpoint(s: Subject) -> Deny | None:
    g, call = s.grant, s.call
    assert g is not None
    if not any(p.matches(call.method, call.path) for p in g.allow):
        return Deny(
            Rule.ENDPOINT_NOT_ALLOWED,
            f"SpendPolicy {g.policy_id} does not allow {call.method} {call.path} "
            f"(allowed: {', '.join(g.allow)}). Add it to spec.allow if this agent needs it.",
        )
    if s.endpoint.pricing == "unpriced":
        why = s.endpoint.reason or "it may move money in ways Tollgate cannot price"
        return Deny(
            Rule.ENDPOINT_UNPRICED,
            f"{call.method} {call.path} is refused even though the policy allows it: {why}.",
        )
    return None


def _readable(s: Subject) -> Deny | None:
    if s.call.parse_error is not None:
        return Deny(
            Rule.REQUEST_INVALID,
            f"Tollgate could not read this request exactly, so it was not sent: {s.call.parse_error}.",
        )
    return None


def _accounts(s: Subject) -> Deny | None:
    g = s.grant
    assert g is not None
    allowed = set(g.connected_accounts or ())
    for acct in sorted(s.accounts - allowed):
        return Deny(
            Rule.ACCOUNT_NOT_ALLOWED,
            f"Connected account {acct} is not in SpendPolicy {g.policy_id} spec.connectedAccounts.",
        )
    return None


def _params(s: Subject) -> Deny | None:
    g, call = s.grant, s.call
    assert g is not None
    for rule in g.params:
        if rule.applies_to(call.method, call.path) and not rule.holds(call.params):
            got = call.params.get(rule.field)
            shown = "absent" if got is None else repr(got)
            return Deny(
                Rule.PARAM_RULE_BROKEN,
                f"SpendPolicy {g.policy_id} requires {rule.describe()}; this call has {rule.field}={shown}.",
                rule.field,
            )
    return None


_REQUEST_RULES: tuple[Callable[[Subject], Deny | None], ...] = (
    _key_known,
    _key_current,
    _readable,  # nothing can be judged of a request that cannot be read exactly
    _endpoint,
    _accounts,
    _params,
)


# ---- rules 6–7: from facts ------------------------------------------------------------------------


def _usage_unpriced(g: Grant, facts: Facts) -> Deny | None:
    # Units the policy does not price are refused like an unpriceable endpoint (rule 3), never guessed.
    for u in facts.usage:
        if g.unit_price(u.unit, u.destination) is None:
            to = f" to {u.destination}" if u.destination else ""
            return Deny(
                Rule.ENDPOINT_UNPRICED,
                f"SpendPolicy {g.policy_id} has no price for {u.unit.replace('_', ' ')}s{to}, and Tollgate "
                f"does not guess. {u.hint}".strip(),
            )
    return None


def _customer_scope(g: Grant, facts: Facts) -> Deny | None:
    if g.customers is None or not facts.customer_related:
        return None
    if facts.unscoped is not None:
        return Deny(
            Rule.CUSTOMER_OUT_OF_SCOPE,
            f"SpendPolicy {g.policy_id} limits calls to listed customers, and {facts.unscoped}. "
            "Name an in-scope customer.",
            "customer",
        )
    outside = sorted(facts.customers - set(g.customers))
    if outside:
        return Deny(
            Rule.CUSTOMER_OUT_OF_SCOPE,
            f"Customer {outside[0]} is outside the scope of SpendPolicy {g.policy_id} (spec.customers).",
            "customer",
        )
    return None


def _recipient_scope(g: Grant, facts: Facts) -> Deny | None:
    outside = sorted(r for r in facts.recipients if not g.allows_recipient(r))
    if outside:
        return Deny(
            Rule.RECIPIENT_OUT_OF_SCOPE,
            f"Recipient {outside[0]} is outside the scope of SpendPolicy {g.policy_id} "
            f"(spec.recipients: {', '.join(g.recipients or ())}).",
            "recipients",
        )
    return None


def _currency(g: Grant, facts: Facts) -> Deny | None:
    if facts.cost is None or g.usd_rate(facts.cost.currency) is not None:
        return None
    return Deny(
        Rule.CURRENCY_NOT_ALLOWED,
        f"Currency {facts.cost.currency.upper()} is not allowed by SpendPolicy {g.policy_id} "
        f"(allowed: {', '.join(c.upper() for c in g.usd_rates)}). Add it to spec.currencies with a usdRate.",
        "currency",
    )


def _shadow(grant: Grant | None, deny: Deny, cost: int = 0) -> Allow | Deny:
    if grant is not None and grant.mode is Mode.SHADOW and not deny.rule.about_the_key:
        return Allow(cost_micro_usd=cost, shadow_denial=deny)
    return deny


# ---- answers when no rule could be evaluated ------------------------------------------------------


def unavailable(detail: str) -> Deny:
    """Fail closed: a part Tollgate needs is down. The call was not forwarded; retrying later is safe."""
    return Deny(
        Rule.UNAVAILABLE, f"Tollgate could not decide ({detail}); the call was not sent. Retry later."
    )


def object_not_found(collection: str, object_id: str) -> Deny:
    noun = collection.rstrip("s").replace("_", " ")
    return Deny(Rule.OBJECT_NOT_FOUND, f"No such {noun}: '{object_id}'.")


def unknown_vendor(name: str) -> Deny:
    return Deny(Rule.ENDPOINT_NOT_ALLOWED, f"This gateway route names no known vendor ({name!r}).")
