"""The channel scripts: publish and sync, several messages (channels) per call (see docs/architecture.md §6).

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

# Sync one channel: meta and hist keys, epoch candidate, since (-1: no replay), floor offset,
# channel ttl ms, max entries. Returns {epoch, offset, entries}. The floor is what a
# subscriber on this instance has already seen: after Redis lost the channel, offsets resume
# above it (a visible gap under a new epoch) instead of restarting at 1 under live subscribers.
_SYNC_ONE = """
local function sync_one(meta, hist, epoch, since, floor, channel_ttl, max_entries)
  if redis.call('HSETNX', meta, 'epoch', epoch) == 1 then
    redis.call('DEL', hist)
  end
  local offset = tonumber(redis.call('HGET', meta, 'offset') or '0')
  if offset < floor then
    offset = floor
    redis.call('HSET', meta, 'offset', offset)
  end
  redis.call('PEXPIRE', meta, channel_ttl)
  local entries = {}
  if since >= 0 and since < offset then
    entries = redis.call('XRANGE', hist, (since + 1) .. '-0', '+', 'COUNT', max_entries)
  end
  return {redis.call('HGET', meta, 'epoch'), offset, entries}
end
"""

# Several syncs in one script (the hub coalesces concurrent subscribes). KEYS: meta, hist per
# channel. ARGV: channel ttl ms, max entries, then per channel: epoch candidate, since, floor.
# Returns one ``sync_one`` reply per channel, in order.
SYNC_MANY_LUA = (
    _SYNC_ONE
    + """
local out = {}
for n = 1, #KEYS / 2 do
  local a = 2 + (n - 1) * 3
  out[n] = sync_one(KEYS[2 * n - 1], KEYS[2 * n], ARGV[a + 1], tonumber(ARGV[a + 2]),
                    tonumber(ARGV[a + 3]), ARGV[1], ARGV[2])
end
return out
"""
)
