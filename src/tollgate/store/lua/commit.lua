-- Commit a decision made from a cached grant: in one atomic step, check that the grant it was made
-- from is still current, recognise a retry of an idempotent call already counted, apply the loop
-- breaker, and reserve the cost against the daily cap. Two calls can never both pass when only one
-- fits, a retry is never counted twice, and a call decided on a revoked or changed grant never passes.
-- KEYS[1] grant version   tg:{vk:<id>}:version
-- KEYS[2] spend counter   tg:{vk:<id>}:spend:<vendor>:<day>
-- KEYS[3] reservation     tg:{vk:<id>}:resv:<reservation id>
-- KEYS[4] last decision   tg:{vk:<id>}:last   (hash: rule, decision_id, at_ms; for the resource's status)
-- KEYS[5] idempotency     tg:{vk:<id>}:idem:<digest>  (hash: fp, rid, replays)
-- KEYS[6] loop breaker    tg:{vk:<id>}:calls  (sorted set of counted calls, score = ms)
-- KEYS[7] ledger marker   tg:{vk:<id>}:ledger (set once the key's spend is rebuilt from the audit ledger)
-- ARGV[1] expected grant version
-- ARGV[2] amount (micro-USD, integer ≥ 0; 0 reserves nothing and is never over the cap)
-- ARGV[3] cap (micro-USD, integer ≥ 0)
-- ARGV[4] TTL of counter and reservation, seconds
-- ARGV[5] rule of the decision, ARGV[6] decision id, ARGV[7] time in ms
-- ARGV[8] request fingerprint ('' when the call carries no idempotency key), ARGV[9] its TTL, seconds
-- ARGV[10] loop breaker: most calls per window (0: this call takes no slot), ARGV[11] window, ms.
--   The caller decides which calls take a slot (LoopBreaker.counts): a free one may too.
--   A slot is never given back (release.lua leaves it): a loop of failing calls is still a loop.
-- ARGV[12] reservation id
-- Approval (rule 7b; the block marked APPROVAL below, self-contained):
-- KEYS[8] approval record  tg:{vk:<id>}:approval:<approval id>  (hash: state, fp, cost, created_ms,
--   expires_ms, ttl_ms, details, decided_by, decided_ms, used_ms)
-- ARGV[13] approval id ('' when the call needs none; set only with a fingerprint), ARGV[14] its ttl, ms,
-- KEYS[9] pending approvals  tg:{vk:<id>}:approvals:pending  (sorted set: approval id, score = expiry ms)
-- ARGV[15] TTL of the record, s, ARGV[16] details (JSON: what the person deciding is shown),
-- KEYS[10] the request's approval  tg:{vk:<id>}:approvalfp:<fingerprint>  (→ approval id: a call of the
--   same request under another Idempotency-Key finds it, see check.py)
-- ARGV[17] most approvals of the key waiting at once (an agent calling again with a new key each time
--   would otherwise flood the people deciding, the alerts and the cluster with requests)
-- Returns {status, spent, retry_after_ms, budget spent[, created, expires_ms, decided_by]}: 1 committed, 0 over
-- the cap, -1 the grant changed or is gone, 2 a replay of a counted call (nothing reserved), 3 loop breaker
-- (retry_after_ms set), 4 idempotency key reused with other parameters (or, for an approval, another
-- amount), 5 no ledger marker: this Redis does not (yet) hold the key's spend from the audit ledger (a new
-- empty Redis, a FLUSHALL), so no money call may pass; 6 approval pending (created = 1 when this call
-- created it), 7 approval rejected, 8 approval expired, 9 approval already used, 10 too many approvals of
-- the key waiting, 11 over the shared budget's cap (spent is then the budget's). The 4th value is the
-- budget's spend (after the reservation when committed; 0 without a budget).
-- Shared budget (only when the key is under a SpendBudget; all in the budget's slot, see store/keys.py):
-- KEYS[11] budget counter  tg:{b:<budget>}:bspend:<budget day>
-- KEYS[12] budget ledger   tg:{b:<budget>}:bledger (set once the budget's spend is rebuilt from the ledger)
-- KEYS[13] budget record   tg:{b:<budget>}:bresv:<reservation id> (names the budget counter it charged)
-- ARGV[18] budget cap (micro-USD, integer ≥ 0)
-- Under a budget, every key above (the key's and the approval's too) carries the budget's hash tag
-- tg:{b:<budget>}:k:<id>:… instead of tg:{vk:<id>}:… (store/keys.py).
-- ---- shared budget: this block and the three lines marked `-- budget` below --------------------------
-- (KEYS[11..13] are present only for a key under a budget: whoever appends more KEYS renumbers them;
-- without an approval, KEYS[8..10] are placeholders.)
local budget = KEYS[11] ~= nil
local bspent = 0
if budget then
  bspent = tonumber(redis.call('GET', KEYS[11]) or '0')
end
-- True when the amount does not fit under the budget's cap (a free call always fits).
local function over_budget(amount)
  return budget and amount > 0 and bspent + amount > tonumber(ARGV[18])
end
local function charge_budget(amount)
  if budget and amount > 0 then
    bspent = redis.call('INCRBY', KEYS[11], amount)
    redis.call('EXPIRE', KEYS[11], ARGV[4])
    redis.call('SET', KEYS[13], KEYS[11], 'EX', ARGV[4])
  end
end
-- ---------------------------------------------------------------------------------------------------
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1, 0, 0, 0}
end
local amount = tonumber(ARGV[2])
local spent = tonumber(redis.call('GET', KEYS[2]) or '0')
if amount > 0 and redis.call('EXISTS', KEYS[7]) == 0 then
  return {5, spent, 0, bspent}
end
if budget and amount > 0 and redis.call('EXISTS', KEYS[12]) == 0 then  -- budget
  return {5, spent, 0, bspent}
end
local now = tonumber(ARGV[7])
local function last(rule)
  redis.call('HSET', KEYS[4], 'rule', rule, 'decision_id', ARGV[6], 'at_ms', ARGV[7])
end
local limit = tonumber(ARGV[10])
local window = tonumber(ARGV[11])
if amount == 0 and limit == 0 then
  last(ARGV[5])
  return {1, spent, 0, bspent}
end
local fp = ARGV[8]
if fp ~= '' then
  -- The first call with this key is counted (pending or done): the vendor runs a key at most once,
  -- so a retry moves no more money. Its reservation is kept even if the first attempt fails, since
  -- the retry may be the one that carried it (release.lua).
  local seen = redis.call('HGET', KEYS[5], 'fp')
  if seen then
    if seen ~= fp then
      last('tollgate_idempotency_key_reused')
      return {4, spent, 0, bspent}
    end
    redis.call('HINCRBY', KEYS[5], 'replays', 1)
    last(ARGV[5])
    return {2, spent, 0, bspent}
  end
end
-- APPROVAL (rule 7b), before the loop breaker and the cap. A retry of the approved call once it has passed
-- is the replay above (the vendor answers it from its first run). The approval is consumed (state 'used')
-- only below, in the step that reserves: over the cap or the loop breaker it stays approved.
local approving = ARGV[13] ~= ''
if approving then
  local want = fp .. ':' .. ARGV[2]  -- the request and its cost: an implied amount that grew is a new request
  local a = redis.call('HMGET', KEYS[8], 'state', 'fp', 'expires_ms', 'decided_by')
  if not a[1] then
    redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', now)
    if redis.call('ZCARD', KEYS[9]) >= tonumber(ARGV[17]) then
      last('tollgate_approval_required')
      return {10, spent, 0, bspent}
    end
    local expires = now + tonumber(ARGV[14])
    redis.call('HSET', KEYS[8], 'state', 'pending', 'fp', want, 'cost', ARGV[2], 'created_ms', now,
      'expires_ms', expires, 'ttl_ms', ARGV[14], 'details', ARGV[16])
    redis.call('EXPIRE', KEYS[8], ARGV[15])
    redis.call('ZADD', KEYS[9], expires, ARGV[13])
    redis.call('PEXPIRE', KEYS[9], ARGV[14])
    redis.call('SET', KEYS[10], ARGV[13], 'EX', ARGV[15])
    last('tollgate_approval_required')
    return {6, spent, 0, bspent, 1, expires, ''}
  end
  if a[2] ~= want then
    last('tollgate_idempotency_key_reused')
    return {4, spent, 0, bspent}
  end
  local state = a[1]
  if (state == 'pending' or state == 'approved') and now >= tonumber(a[3]) then
    state = 'expired'  -- marked in the record by whoever sweeps (reconcile/approvals.py), audited there
  end
  local answers = {pending = {6, 'tollgate_approval_required'}, rejected = {7, 'tollgate_approval_rejected'},
    expired = {8, 'tollgate_approval_expired'}, used = {9, 'tollgate_approval_used'}}
  local answer = answers[state]
  if answer then
    last(answer[2])
    return {answer[1], spent, 0, bspent, 0, tonumber(a[3]), a[4] or ''}
  end
end
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - window)
  if redis.call('ZCARD', KEYS[6]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
    last('tollgate_loop_breaker')
    return {3, spent, math.max(1, tonumber(oldest[2]) + window - now), bspent}
  end
end
-- A free call is never over the cap, even when settled costs have pushed spend past it.
if amount > 0 and spent + amount > tonumber(ARGV[3]) then
  last('tollgate_cap_exceeded')
  return {0, spent, 0, bspent}
end
if over_budget(amount) then  -- budget
  last('tollgate_budget_exceeded')
  return {11, bspent, 0, bspent}
end
local after = spent
if amount > 0 then
  after = redis.call('INCRBY', KEYS[2], amount)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[4])
  charge_budget(amount)  -- budget
end
if limit > 0 then
  redis.call('ZADD', KEYS[6], now, ARGV[12])
  redis.call('PEXPIRE', KEYS[6], window)
end
if fp ~= '' then
  redis.call('HSET', KEYS[5], 'fp', fp, 'rid', ARGV[12], 'replays', 0)
  redis.call('EXPIRE', KEYS[5], ARGV[9])
end
if approving then  -- APPROVAL: consumed with the reservation, in the same atomic step
  redis.call('HSET', KEYS[8], 'state', 'used', 'used_ms', now)
end
last(ARGV[5])
return {1, after, 0, bspent}
