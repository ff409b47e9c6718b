-- First half of moving a key to another slot (its policy gained, lost or changed its budgetRef; see
-- store/keys.py): in the key's old slot, delete its grant version, so every commit decided on the old
-- grant fails STALE from now on and nothing passes uncounted, and read what moves. Nothing is deleted
-- but the version: the old counters go only once the new slot holds them (a crash in between repeats
-- the move, and the move id makes the second adoption a no-op).
-- KEYS[1] version, KEYS[2] move id, KEYS[3] loop breaker log, KEYS[4] ledger marker, KEYS[5..] the key's
-- spend counters that move (one per day).
-- ARGV[1] a fresh move id (used unless a move already in progress has one), ARGV[2] its TTL, s.
-- Returns {move id, ledger marker ('' when unmarked), {counter values}, {member, score, …}}.
redis.call('DEL', KEYS[1])
local id = redis.call('GET', KEYS[2])
if not id then
  id = ARGV[1]
  redis.call('SET', KEYS[2], id, 'EX', ARGV[2])
end
local counters = {}
for i = 5, #KEYS do
  counters[#counters + 1] = redis.call('GET', KEYS[i]) or '0'
end
local calls = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
return {id, redis.call('GET', KEYS[4]) or '', counters, calls}
