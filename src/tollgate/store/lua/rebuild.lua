-- Give a key its spend back from the audit ledger, once, and mark it so money calls may pass again.
-- KEYS[1] ledger marker, KEYS[2] loop breaker log, KEYS[3..] the spend counters to set (one per day).
-- ARGV[1] marker value: the time (ms) the rebuild started; calls made before it and settled later are
--         adopted by settle.lua. ARGV[2] counter TTL, s. ARGV[3] loop breaker window, ms (0: none).
-- ARGV[4..3+n] the ledger's amount for each counter (n = #KEYS - 2), then (member, score) pairs of the
--         loop breaker's counted calls.
-- A counter is set to the larger of the ledger and what it holds (never lowered). Returns 1 when the key
-- was rebuilt, 0 when it was already marked (another ingester, or a retry, got there first).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local n = #KEYS - 2
for i = 1, n do
  local want = tonumber(ARGV[3 + i])
  local have = tonumber(redis.call('GET', KEYS[2 + i]) or '0')
  if want > have then
    redis.call('SET', KEYS[2 + i], want, 'EX', ARGV[2])
  end
end
local window = tonumber(ARGV[3])
for i = 4 + n, #ARGV, 2 do
  redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
end
if window > 0 and #ARGV >= 4 + n then
  redis.call('PEXPIRE', KEYS[2], window)
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
