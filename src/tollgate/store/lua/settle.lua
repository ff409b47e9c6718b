-- Settle a reservation at the vendor's actual amount: less than reserved gives the difference back, more
-- (the vendor moved more than was reserved) counts the excess, since the vendor is the truth. Idempotent:
-- a closed reservation stays behind as 'x' until its TTL, so settling the same call again does nothing.
-- KEYS[1] spend counter, KEYS[2] reservation, KEYS[3] the key's ledger marker.
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
  return 0
end
local back = tonumber(reserved) - tonumber(ARGV[1])
if back > 0 then
  redis.call('DECRBY', KEYS[1], back)
elseif back < 0 then
  redis.call('INCRBY', KEYS[1], -back)
end
redis.call('SET', KEYS[2], 'x', 'EX', ARGV[3])
return back
