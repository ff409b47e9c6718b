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
  tg:approvals                           → hash: approval id → key id (what the operator mirrors and
                                           `tollgate approve` finds; entries go once their record has)
  tg:approvals:log                       → stream: each approval decided (approved, rejected, expired),
                                           by whom; the audit copies it to SQL   capped length
  tg:ledger                              → run id of the Redis server the audit last checked the marks
                                           on: gone after a FLUSHALL, another one after a restart or a
                                           failover to a replica (which may be behind)
  tg:settled:<sha256(log)>               → how far settlement read that access log (file@offset)
  tg:alert:<dedup>                       → 1 while an alert is not to be repeated TTL: the dedup window

ext_authz may decide from a cached grant: the commit script then checks `version` in the same atomic
step that reserves the cost, so a revoke (which deletes it) or any change wins over the cache.
Vault tokens are never stored, only their SHA-256. Vendor keys are stored only sealed inside grants.
"""

from __future__ import annotations

import hashlib

PREFIX = "tg:"


def _tag(key_id: str) -> str:
    return f"{PREFIX}{{vk:{key_id}}}"


def token(token_sha256: str) -> str:
    return f"{PREFIX}token:{token_sha256}"


def grant(key_id: str) -> str:
    return f"{_tag(key_id)}:grant"


def version(key_id: str) -> str:
    return f"{_tag(key_id)}:version"


def spend(key_id: str, vendor: str, day: str) -> str:
    return f"{_tag(key_id)}:spend:{vendor}:{day}"


def reservation(key_id: str, reservation_id: str) -> str:
    return f"{_tag(key_id)}:resv:{reservation_id}"


def last_decision(key_id: str) -> str:
    return f"{_tag(key_id)}:last"


def idempotency(key_id: str, idempotency_key: str) -> str:
    # Hashed: the key is the agent's free text (up to 255 characters at Stripe).
    return f"{_tag(key_id)}:idem:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}"


def calls(key_id: str) -> str:
    return f"{_tag(key_id)}:calls"


def approval(key_id: str, approval_id: str) -> str:
    return f"{_tag(key_id)}:approval:{approval_id}"


def approval_of_request(key_id: str, request: str) -> str:
    # Hashed: the request is a fingerprint and a cost, already hex and digits, but of no fixed length.
    return f"{_tag(key_id)}:approvalfp:{hashlib.sha256(request.encode()).hexdigest()[:32]}"


def pending_approvals(key_id: str) -> str:
    return f"{_tag(key_id)}:approvals:pending"


def approvals_index() -> str:
    return f"{PREFIX}approvals"


def approvals_log() -> str:
    return f"{PREFIX}approvals:log"


def ledger(key_id: str) -> str:
    return f"{_tag(key_id)}:ledger"


def ledger_hint() -> str:
    return f"{PREFIX}ledger"


def settle_checkpoint(source: str) -> str:
    # Hashed: the source is a file path.
    return f"{PREFIX}settled:{hashlib.sha256(source.encode()).hexdigest()[:32]}"


def alert(dedup: str) -> str:
    return f"{PREFIX}alert:{dedup}"


def grants_index() -> str:
    return f"{PREFIX}grants"
