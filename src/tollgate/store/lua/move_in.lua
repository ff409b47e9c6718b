-- Second half of moving a key to another slot (see move_out.lua): add what the old slot held to the new
-- slot's counters, once per move id, and carry the ledger marker over (a key whose spend the old slot
-- held from the ledger holds it here too; one it did not, is rebuilt here by the audit ingester).
-- KEYS[1] the move's adoption marker, KEYS[2] ledger marker, KEYS[3] loop breaker log, KEYS[4..3+n] the
-- spend counters (same days as move_out's).
-- ARGV[1] TTL of counters and marker, s. ARGV[2] the old ledger marker ('' when unmarked).
-- ARGV[3] n, ARGV[4..3+n] the old counter values, then (member, score) pairs of the loop breaker log.
-- Returns 1 when this call added them, 0 when this move was already adopted.
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then
  return 0
end
local n = tonumber(ARGV[3])
for i = 1, n do
  local v = tonumber(ARGV[3 + i])
  if v ~= 0 then
    redis.call('INCRBY', KEYS[3 + i], v)
    redis.call('EXPIRE', KEYS[3 + i], ARGV[1])
  end
end
for i = 4 + n, #ARGV, 2 do
  -- loop breaker entries are pruned by window on the next commit; the log's own TTL is set there too
  redis.call('ZADD', KEYS[3], ARGV[i + 1], ARGV[i])
end
if #ARGV >= 4 + n then
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[2], ARGV[2])
else
  redis.call('DEL', KEYS[2])
end
return 1
