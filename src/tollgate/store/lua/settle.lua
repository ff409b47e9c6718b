-- Settle a reservation at the vendor's actual amount (≤ reserved); the difference goes back. Idempotent.
-- KEYS[1] spend counter, KEYS[2] reservation. ARGV[1] actual amount (micro-USD).
-- Returns the amount given back.
local reserved = redis.call('GET', KEYS[2])
if not reserved then
  return 0
end
local back = tonumber(reserved) - tonumber(ARGV[1])
if back > 0 then
  redis.call('DECRBY', KEYS[1], back)
else
  back = 0
end
redis.call('DEL', KEYS[2])
return back
