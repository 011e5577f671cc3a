"""The channel scripts: publish and sync (see docs/architecture.md §6).

Per channel ``C`` (``P`` is the key prefix, ``perfgate:`` by default; see
:class:`perfgate.redis.keys.Keys`):

* ``P{ch}:C:meta`` — a hash: ``offset`` (the last offset given out), ``epoch`` and ``bytes``
  (what the history stream holds). Offsets are
  allocated here by ``HINCRBY`` inside the publish script, so they increase by one per channel
  whichever instance publishes. A new ``epoch`` is written (and the history dropped) whenever
  the hash is missing: a Redis restart without persistence, or a channel idle past its TTL.
* ``P{ch}:C:hist`` — a stream of at most ``history_size`` entries and ``history_bytes`` payload
  bytes, expiring ``history_ttl_s`` after the last publish; entry id ``OFFSET-0``, so a
  ``since`` replay is ``XRANGE (since+1) +``; field ``m`` holds the payload.
* pub/sub channel ``P{msg}:C`` — the payload (:mod:`perfgate.redis.codec`), published in the
  same script as the ``XADD``, so pub/sub order is offset order.
"""

# KEYS: meta, hist. ARGV: pubsub channel, epoch candidate, priority, published_at, JSON,
# history_size, history ttl ms, channel ttl ms, history_bytes. Returns the offset.
# The meta hash's `bytes` counts the payload bytes the stream holds (reset when the stream has
# expired); the oldest entries are trimmed while the stream is over either bound, so history in
# Redis is bounded in bytes as well as in entries, and expires history_ttl_s after the last
# publish. A payload over history_bytes on its own is not retained.
PUBLISH_LUA = """
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[2]) == 1 then
  redis.call('DEL', KEYS[2])
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local payload = offset .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5]
local size = tonumber(ARGV[6])
if size > 0 then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('HSET', KEYS[1], 'bytes', 0)
  end
  redis.call('XADD', KEYS[2], offset .. '-0', 'm', payload)
  local held = redis.call('HINCRBY', KEYS[1], 'bytes', #payload)
  local limit = tonumber(ARGV[9])
  local count = redis.call('XLEN', KEYS[2])
  while count > 0 and (count > size or held > limit) do
    local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
    count = count - 1
    redis.call('XTRIM', KEYS[2], 'MAXLEN', count)
    held = redis.call('HINCRBY', KEYS[1], 'bytes', -#oldest[1][2][2])
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
end
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('PUBLISH', ARGV[1], payload)
return offset
"""

# KEYS: meta, hist. ARGV: epoch candidate, since (-1: no replay), floor offset, channel ttl ms,
# max entries. Returns {epoch, offset, entries}. The floor is what a subscriber on this
# instance has already seen: after Redis lost the channel, offsets resume above it (a visible
# gap under a new epoch) instead of restarting at 1 under live subscribers.
SYNC_LUA = """
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
end
local offset = tonumber(redis.call('HGET', KEYS[1], 'offset') or '0')
local floor = tonumber(ARGV[3])
if offset < floor then
  offset = floor
  redis.call('HSET', KEYS[1], 'offset', offset)
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local since = tonumber(ARGV[2])
local entries = {}
if since >= 0 and since < offset then
  entries = redis.call('XRANGE', KEYS[2], (since + 1) .. '-0', '+', 'COUNT', ARGV[5])
end
return {redis.call('HGET', KEYS[1], 'epoch'), offset, entries}
"""
