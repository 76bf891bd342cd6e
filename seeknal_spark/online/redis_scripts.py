"""The Lua scripts that make each step of the Redis sink one atomic server-side action.

Keys of a table ``T`` under prefix ``P`` (see :mod:`seeknal_spark.online.redis`): the served
generation's pointer, the hash of generations being written (with heartbeats), the hash of
generations holding data (with their lookup count), and per generation ``P:T:<g>:<ns>``
hashes of values and ``P:T:<g>:m`` metadata.
"""

from __future__ import annotations

import hashlib

__all__ = ["BEGIN", "CLEANUP", "COMMIT", "HEARTBEAT", "READ", "READ_SHA"]

BEGIN = """
local g = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
redis.call('HSET', KEYS[2], g, t[1])
redis.call('HSET', KEYS[3], g, ARGV[1])
return g
"""

HEARTBEAT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], redis.call('TIME')[1])
  return 1
end
return 0
"""

COMMIT = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return redis.error_reply('SEEKNAL generation ' .. ARGV[1] .. ' is no longer registered')
end
redis.call('SET', KEYS[3], ARGV[2])
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return old
"""

# KEYS: current, writing, parts. ARGV: "P:T:", orphan_after seconds, generation to drop or "".
CLEANUP = """
local keep = {}
local cur = redis.call('GET', KEYS[1])
if cur then keep[cur] = true end
local now = tonumber(redis.call('TIME')[1])
local w = redis.call('HGETALL', KEYS[2])
for i = 1, #w, 2 do
  if w[i] ~= ARGV[3] and tonumber(w[i + 1]) >= now - tonumber(ARGV[2]) then
    keep[w[i]] = true
  else
    redis.call('HDEL', KEYS[2], w[i])
  end
end
local parts = redis.call('HGETALL', KEYS[3])
local removed = {}
for i = 1, #parts, 2 do
  local g = parts[i]
  if not keep[g] then
    local ks = {ARGV[1] .. g .. ':m'}
    for ns = 0, tonumber(parts[i + 1]) - 1 do ks[#ks + 1] = ARGV[1] .. g .. ':' .. ns end
    redis.call('UNLINK', unpack(ks))
    redis.call('HDEL', KEYS[3], g)
    removed[#removed + 1] = g
  end
end
return removed
"""

# KEYS: current. ARGV: "P:T:", then per lookup: namespace, key count, the keys.
READ = """
local g = redis.call('GET', KEYS[1])
if not g then return {false} end
local out = {g}
local i = 2
local n = #ARGV
while i <= n do
  local h = ARGV[1] .. g .. ':' .. ARGV[i]
  local s = i + 2
  local e = s + tonumber(ARGV[i + 1]) - 1
  while s <= e do
    local j = math.min(s + 999, e)
    local vs = redis.call('HMGET', h, unpack(ARGV, s, j))
    for a = 1, j - s + 1 do out[#out + 1] = vs[a] end
    s = j + 1
  end
  i = e + 1
end
return out
"""


READ_SHA = hashlib.sha1(READ.encode()).hexdigest().encode()
