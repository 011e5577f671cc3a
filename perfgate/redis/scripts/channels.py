"""The channel scripts: publish (several messages at once) and sync (see docs/architecture.md §6).

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

# Publish one message: meta and hist keys, pubsub channel, epoch candidate, priority,
# published_at, JSON, history_size, history ttl ms, channel ttl ms, history_bytes. Returns the
# offset. The meta hash's `bytes` counts the payload bytes the stream holds (reset when the
# stream has expired); the oldest entries are trimmed while the stream is over either bound, so
# history in Redis is bounded in bytes as well as in entries, and expires history_ttl_s after
# the last publish. A payload over history_bytes on its own is not retained.
_PUBLISH_ONE = """
local function publish_one(meta, hist, channel, epoch, priority, at, body, size, hist_ttl,
                           channel_ttl, limit)
  if redis.call('HSETNX', meta, 'epoch', epoch) == 1 then
    redis.call('DEL', hist)
  end
  local offset = redis.call('HINCRBY', meta, 'offset', 1)
  local payload = offset .. ' ' .. priority .. ' ' .. at .. ' ' .. body
  if size > 0 then
    if redis.call('EXISTS', hist) == 0 then
      redis.call('HSET', meta, 'bytes', 0)
    end
    redis.call('XADD', hist, offset .. '-0', 'm', payload)
    local held = redis.call('HINCRBY', meta, 'bytes', #payload)
    local count = redis.call('XLEN', hist)
    while count > 0 and (count > size or held > limit) do
      local oldest = redis.call('XRANGE', hist, '-', '+', 'COUNT', 1)
      count = count - 1
      redis.call('XTRIM', hist, 'MAXLEN', count)
      held = redis.call('HINCRBY', meta, 'bytes', -#oldest[1][2][2])
    end
    redis.call('PEXPIRE', hist, hist_ttl)
  end
  redis.call('PEXPIRE', meta, channel_ttl)
  redis.call('PUBLISH', channel, payload)
  return offset
end
"""

# Several publishes in one script (the hub coalesces concurrent ones: see
# perfgate/redis/coalesce.py). KEYS: meta, hist per message. ARGV: history_size, history ttl
# ms, channel ttl ms, history_bytes, then per message: pubsub channel, epoch candidate,
# priority, published_at, JSON. Returns the offsets, in order; messages of one channel are
# published in their order.
PUBLISH_MANY_LUA = (
    _PUBLISH_ONE
    + """
local size, hist_ttl, channel_ttl, limit = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local out = {}
for n = 1, #KEYS / 2 do
  local a = 4 + (n - 1) * 5
  out[n] = publish_one(KEYS[2 * n - 1], KEYS[2 * n], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
                       ARGV[a + 4], ARGV[a + 5], size, hist_ttl, channel_ttl, limit)
end
return out
"""
)

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
