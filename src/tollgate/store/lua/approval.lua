-- Decide an approval (store/lua/commit.lua creates and consumes them): a person approves or rejects a
-- pending one, or a sweep marks a live one past its expiry as expired. Atomic, so a decision can never
-- land on an approval the data plane has just used or that has expired.
-- KEYS[1] approval record  tg:{vk:<id>}:approval:<approval id>
-- KEYS[2] the key's pending approvals  tg:{vk:<id>}:approvals:pending  (a decided one leaves it)
-- ARGV[1] new state: approved | rejected | expired, ARGV[2] by whom, ARGV[3] now, ms,
-- ARGV[4] how long a record is kept past its expiry, s (an approved one lives its ttl again, from now),
-- ARGV[5] the approval id
-- Returns {1, state} when decided, {0, state} when the record is in a state that does not allow it
-- ('' when there is no record).
local a = redis.call('HMGET', KEYS[1], 'state', 'expires_ms', 'ttl_ms')
if not a[1] then
  return {0, ''}
end
local now = tonumber(ARGV[3])
local state = a[1]
if (state == 'pending' or state == 'approved') and now >= tonumber(a[2]) then
  state = 'expired'
end
local to = ARGV[1]
if to == 'expired' then
  if state ~= 'expired' or a[1] == 'expired' then
    return {0, state}
  end
  redis.call('HSET', KEYS[1], 'state', 'expired')
  return {1, 'expired'}
end
if state ~= 'pending' then
  return {0, state}
end
redis.call('HSET', KEYS[1], 'state', to, 'decided_by', ARGV[2], 'decided_ms', now)
redis.call('ZREM', KEYS[2], ARGV[5])
if to == 'approved' then
  -- The agent gets the whole ttl to retry, counted from the approval.
  redis.call('HSET', KEYS[1], 'expires_ms', now + tonumber(a[3]))
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(a[3]) / 1000) + tonumber(ARGV[4]))
end
return {1, to}
