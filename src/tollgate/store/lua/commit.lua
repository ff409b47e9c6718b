-- Commit a decision made from a cached grant: in one atomic step, check that the grant it was made
-- from is still current, and reserve its cost against the daily cap. Two calls can never both pass
-- when only one fits, and a call decided on a revoked or changed grant never passes.
-- KEYS[1] grant version   tg:{vk:<id>}:version
-- KEYS[2] spend counter   tg:{vk:<id>}:spend:<vendor>:<day>
-- KEYS[3] reservation     tg:{vk:<id>}:resv:<reservation id>
-- ARGV[1] expected grant version
-- ARGV[2] amount (micro-USD, integer ≥ 0; 0 reserves nothing)
-- ARGV[3] cap (micro-USD, integer ≥ 0)
-- ARGV[4] TTL of counter and reservation, seconds
-- KEYS[4] last decision   tg:{vk:<id>}:last   (hash: rule, decision_id, at_ms; for the resource's status)
-- ARGV[5] rule of the decision, ARGV[6] decision id, ARGV[7] time in ms
-- Returns {1, spent_after} committed, {0, spent_now} over the cap, {-1, 0} the grant changed or is gone.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1, 0}
end
local amount = tonumber(ARGV[2])
local spent = tonumber(redis.call('GET', KEYS[2]) or '0')
local function last(rule)
  redis.call('HSET', KEYS[4], 'rule', rule, 'decision_id', ARGV[6], 'at_ms', ARGV[7])
end
if amount == 0 then
  last(ARGV[5])
  return {1, spent}
end
if spent + amount > tonumber(ARGV[3]) then
  last('tollgate_cap_exceeded')
  return {0, spent}
end
local after = redis.call('INCRBY', KEYS[2], amount)
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[4])
last(ARGV[5])
return {1, after}
