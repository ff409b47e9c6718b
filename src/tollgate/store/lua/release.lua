-- Give a reservation back (proven: the vendor did not process the call, or it never left). Idempotent:
-- the closed reservation stays behind as 'x' until its TTL (see settle.lua).
-- KEYS[1] spend counter, KEYS[2] reservation, KEYS[3] the idempotency record of the call (one no call
-- has when it had no idempotency key).
-- Shared budget (a key under a SpendBudget): KEYS[4] the budget counter, KEYS[5] the reservation's budget
-- record (which names the budget counter it charged): the same amount goes back there, once.
-- ARGV[1] the reservation id, ARGV[2] TTL of a closed reservation, s.
-- A call with an idempotency key: its record goes too, so a later retry is counted again (the vendor
-- did not run it) — unless a retry already passed on the strength of it while it was pending: that
-- retry may have been the attempt the vendor ran, so the reservation is kept (counted once, never lost).
-- Returns the amount released (0 when the reservation was already settled, released or kept).
-- The call's loop-breaker slot (commit.lua) stays taken: a loop of calls the vendor refuses is still a loop.
if KEYS[3] and redis.call('HGET', KEYS[3], 'rid') == ARGV[1] then
  if tonumber(redis.call('HGET', KEYS[3], 'replays') or '0') > 0 then
    return 0
  end
  redis.call('DEL', KEYS[3])
end
local held = redis.call('GET', KEYS[2])
if not held or held == 'x' then
  return 0
end
local amount = tonumber(held)
if amount > 0 then
  redis.call('DECRBY', KEYS[1], amount)
end
if KEYS[4] and redis.call('GET', KEYS[5]) == KEYS[4] then  -- budget
  if amount > 0 then
    redis.call('DECRBY', KEYS[4], amount)
  end
  redis.call('SET', KEYS[5], 'x', 'EX', ARGV[2])
end
redis.call('SET', KEYS[2], 'x', 'EX', ARGV[2])
return amount
