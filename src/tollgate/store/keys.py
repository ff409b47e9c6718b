"""Every Redis key name Tollgate uses, and nowhere else builds one.

Layout (all keys prefixed `tg:`; `{vk:<key_id>}` is a hash tag, so everything one Lua script touches
sits in one slot and the scripts run unchanged on Redis Cluster, Valkey or a managed Redis):

  tg:token:<sha256(token)>               → key id ("namespace/name")            index, no TTL
  tg:{vk:<key_id>}:grant                 → Grant JSON                           no TTL
  tg:{vk:<key_id>}:version               → the grant's version                  no TTL
  tg:{vk:<key_id>}:spend:<vendor>:<day>  → integer micro-USD reserved that day  TTL: 2 days
  tg:{vk:<key_id>}:resv:<reservation>    → integer micro-USD of one reservation TTL: 2 days
  tg:{vk:<key_id>}:last                  → hash: rule, decision_id, at_ms        for status
  tg:{vk:<key_id>}:idem:<sha256(key)>    → hash: fp, rid, replays (one Idempotency-Key's first call)
                                                                                TTL: 24 h, the vendor's window
  tg:{vk:<key_id>}:calls                 → sorted set: one member per counted call, score = ms
                                           (the loop breaker's rolling window)  TTL: the window
  tg:{vk:<key_id>}:approval:<id>         → hash: state, fp, cost, created_ms, expires_ms, ttl_ms, details,
                                           decided_by, decided_ms, used_ms (a call waiting for a person)
                                                                                TTL: its ttl + 24 h
  tg:{vk:<key_id>}:approvalfp:<request>  → the approval id of a request (fingerprint and cost), so the same
                                           call under a new Idempotency-Key finds it  TTL: the record's
  tg:{vk:<key_id>}:approvals:pending     → sorted set: the key's approvals waiting for a person, score =
                                           expiry ms (Limits.approval_max_waiting)  TTL: the ttl
  tg:{vk:<key_id>}:ledger                → ms when this Redis got the key's spend from the audit ledger
                                           (no money call passes without it)    no TTL
  tg:grants                              → set of key ids with a grant          for resync / listing
  tg:approvals                           → hash: approval id → key id, or "key id<TAB>budget id" for a key
                                           under a shared budget (the record's slot); what the operator
                                           mirrors and `tollgate approve` finds; entries go once their
                                           record has
  tg:approvals:log                       → stream: each approval decided (approved, rejected, expired),
                                           by whom; the audit copies it to SQL   capped length
  tg:budgets                             → set of budget ids a grant was written under (the ledger
                                           sweep rebuilds their spend)
  tg:ledger                              → run id of the Redis server the audit last checked the marks
                                           on: gone after a FLUSHALL, another one after a restart or a
                                           failover to a replica (which may be behind)
  tg:settled:<sha256(log)>               → how far settlement read that access log (file@offset)
  tg:alert:<dedup>                       → 1 while an alert is not to be repeated TTL: the dedup window

Shared budgets (a SpendBudget, which a SpendPolicy names in `budgetRef`): a key's call is reserved against
its own cap and the budget's in one script, so the key's counters must sit in the budget's slot. The
*slot* of a key is `vk:<key_id>` (the layout above, unchanged for keys without a budget) or
`b:<namespace>/<budget>` for a key under a budget, whose per-key keys then carry the key id in their name:

  tg:{b:<budget_id>}:k:<key_id>:version|spend:…|resv:…|last|idem:…|calls|ledger|approval:…|approvalfp:…|
    approvals:pending                                                   as above, per key
  tg:{b:<budget_id>}:bspend:<day>        → integer micro-USD reserved under the budget that day (its own
                                           time zone's day)                     TTL: 2 days
  tg:{b:<budget_id>}:bledger             → ms when this Redis got the budget's spend from the audit
                                           ledger (no money call under it passes without it) no TTL
  tg:{b:<budget_id>}:bresv:<reservation> → the budget counter one reservation charged   TTL: 2 days
  <key's keys in a slot>:moving          → id of a move out of this slot in progress (reconcile)
                                                                                TTL: 2 days
  <key's keys in a slot>:adopted:<move>  → 1 once that move's counters were added here TTL: 2 days
  (`<key's keys in a slot>` is `tg:{vk:<key_id>}` or `tg:{b:<budget_id>}:k:<key_id>`.)

The grant itself stays at `tg:{vk:<key_id>}:grant` (ext_authz finds it by key id alone, outside any
script) and says which budget the key is under; the slot follows from it (`slot`), so ext_authz builds
every KEY of commit.lua from the grant. release.lua and settle.lua find the slot from the audit row,
which names the budget and its day. When a policy gains, loses or changes its budgetRef its keys change
slot: reconcile moves the key's counters (store/redis.py: move_out.lua deletes the old version first,
move_in.lua adds the spend once per move id, then the grant is written and the old slot cleared), and a
commit decided on the old grant finds no version in the old slot (STALE).

ext_authz may decide from a cached grant: the commit script then checks `version` in the same atomic
step that reserves the cost, so a revoke (which deletes it) or any change wins over the cache.
Vault tokens are never stored, only their SHA-256. Vendor keys are stored only sealed inside grants.
"""

from __future__ import annotations

import hashlib

PREFIX = "tg:"


def slot(key_id: str, budget_id: str | None = None) -> str:
    """The hash tag every key one script touches for `key_id` shares: its own, or its budget's."""
    return f"b:{budget_id}" if budget_id else f"vk:{key_id}"


def _tag(key_id: str, budget_id: str | None = None) -> str:
    if budget_id:
        return f"{PREFIX}{{{slot(key_id, budget_id)}}}:k:{key_id}"
    return f"{PREFIX}{{vk:{key_id}}}"


def _btag(budget_id: str) -> str:
    return f"{PREFIX}{{b:{budget_id}}}"


def token(token_sha256: str) -> str:
    return f"{PREFIX}token:{token_sha256}"


def grant(key_id: str) -> str:
    return f"{_tag(key_id)}:grant"


def version(key_id: str, budget_id: str | None = None) -> str:
    return f"{_tag(key_id, budget_id)}:version"


def spend(key_id: str, vendor: str, day: str, budget_id: str | None = None) -> str:
    return f"{_tag(key_id, budget_id)}:spend:{vendor}:{day}"


def reservation(key_id: str, reservation_id: str, budget_id: str | None = None) -> str:
    return f"{_tag(key_id, budget_id)}:resv:{reservation_id}"


def last_decision(key_id: str, budget_id: str | None = None) -> str:
    return f"{_tag(key_id, budget_id)}:last"


def idempotency(key_id: str, idempotency_key: str, budget_id: str | None = None) -> str:
    # Hashed: the key is the agent's free text (up to 255 characters at Stripe).
    return f"{_tag(key_id, budget_id)}:idem:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}"


def calls(key_id: str, budget_id: str | None = None) -> str:
    return f"{_tag(key_id, budget_id)}:calls"


def ledger(key_id: str, budget_id: str | None = None) -> str:
    return f"{_tag(key_id, budget_id)}:ledger"


def moving(key_id: str, budget_id: str | None = None) -> str:
    return f"{_tag(key_id, budget_id)}:moving"


def adopted(key_id: str, budget_id: str | None, move_id: str) -> str:
    return f"{_tag(key_id, budget_id)}:adopted:{move_id}"


def budget_spend(budget_id: str, day: str) -> str:
    return f"{_btag(budget_id)}:bspend:{day}"


def budget_ledger(budget_id: str) -> str:
    return f"{_btag(budget_id)}:bledger"


def budget_reservation(budget_id: str, reservation_id: str) -> str:
    return f"{_btag(budget_id)}:bresv:{reservation_id}"


def approval(key_id: str, approval_id: str, budget_id: str | None = None) -> str:
    return f"{_tag(key_id, budget_id)}:approval:{approval_id}"


def approval_of_request(key_id: str, request: str, budget_id: str | None = None) -> str:
    # Hashed: the request is a fingerprint and a cost, already hex and digits, but of no fixed length.
    return f"{_tag(key_id, budget_id)}:approvalfp:{hashlib.sha256(request.encode()).hexdigest()[:32]}"


def pending_approvals(key_id: str, budget_id: str | None = None) -> str:
    return f"{_tag(key_id, budget_id)}:approvals:pending"


def approvals_index() -> str:
    return f"{PREFIX}approvals"


def approvals_log() -> str:
    return f"{PREFIX}approvals:log"


def ledger_hint() -> str:
    return f"{PREFIX}ledger"


def settle_checkpoint(source: str) -> str:
    # Hashed: the source is a file path.
    return f"{PREFIX}settled:{hashlib.sha256(source.encode()).hexdigest()[:32]}"


def alert(dedup: str) -> str:
    return f"{PREFIX}alert:{dedup}"


def grants_index() -> str:
    return f"{PREFIX}grants"


def budgets_index() -> str:
    return f"{PREFIX}budgets"
