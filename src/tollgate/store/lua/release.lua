-- Give a reservation back (the vendor refused the call or never answered). Idempotent.
-- KEYS[1] spend counter, KEYS[2] reservation.
-- Returns the amount released (0 when the reservation was already settled or released).
local amount = tonumber(redis.call('GET', KEYS[2]) or '0')
if amount > 0 then
  redis.call('DECRBY', KEYS[1], amount)
end
redis.call('DEL', KEYS[2])
return amount
