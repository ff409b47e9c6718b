-- Settle a reservation at the vendor's actual amount: less than reserved gives the difference back, more
-- (the vendor moved more than was reserved) counts the excess, since the vendor is the truth. Idempotent:
-- a closed reservation stays behind as 'x' until its TTL, so settling the same call again does nothing.
-- KEYS[1] spend counter, KEYS[2] reservation, KEYS[3] the key's ledger marker.
-- Shared budget (a key under a SpendBudget): KEYS[4] the budget counter, KEYS[5] the reservation's budget
-- record (naming the budget counter it charged), KEYS[6] the budget's ledger marker. The budget counter
-- moves with the key's, by the same amount, once; an adopted call is counted there too when the budget's
-- spend was rebuilt after the call was made.
-- ARGV[1] actual amount (micro-USD), ARGV[2] the call's time (ms; 0: unknown, never adopted),
-- ARGV[3] TTL of a closed reservation, s.
-- A counted call with no reservation here, made before this Redis got the key's spend from the ledger
-- (marker time > call time), was reserved in a Redis that lost its data and was not yet in the audit when
-- the spend was rebuilt: it is adopted (counted now), once: its reservation is left closed ('x').
-- Returns the amount given back (negative: the excess counted).
local reserved = redis.call('GET', KEYS[2])
if reserved == 'x' then
  return 0
end
if not reserved then
  local since = tonumber(redis.call('GET', KEYS[3]) or '0')
  local at = tonumber(ARGV[2])
  if since > 0 and at > 0 and at < since and tonumber(ARGV[1]) > 0 then
    redis.call('INCRBY', KEYS[1], ARGV[1])
    redis.call('EXPIRE', KEYS[1], ARGV[3])
    redis.call('SET', KEYS[2], 'x', 'EX', ARGV[3])
  end
  if KEYS[4] and redis.call('GET', KEYS[5]) == false then  -- budget: adopt it there too, once
    local bsince = tonumber(redis.call('GET', KEYS[6]) or '0')
    if bsince > 0 and at > 0 and at < bsince and tonumber(ARGV[1]) > 0 then
      redis.call('INCRBY', KEYS[4], ARGV[1])
      redis.call('EXPIRE', KEYS[4], ARGV[3])
      redis.call('SET', KEYS[5], 'x', 'EX', ARGV[3])
    end
  end
  return 0
end
local back = tonumber(reserved) - tonumber(ARGV[1])
-- Give back what was reserved over the actual amount (a negative `back` adds what the vendor took over it).
local function give_back(counter)
  if back ~= 0 then
    redis.call('DECRBY', counter, back)
  end
end
give_back(KEYS[1])
redis.call('SET', KEYS[2], 'x', 'EX', ARGV[3])
if KEYS[4] and redis.call('GET', KEYS[5]) == KEYS[4] then  -- budget
  give_back(KEYS[4])
  redis.call('SET', KEYS[5], 'x', 'EX', ARGV[3])
end
return back
