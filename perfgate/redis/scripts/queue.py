"""The Lua of the shared job queue: claim (with reclaim and task caps) and lease refresh.

Pure: no I/O. :class:`perfgate.redis.queue.RedisJobQueue` runs these. ``P{q}:PRIORITY`` are
the job streams (entry field ``id``) with one consumer group (:data:`perfgate.redis.keys.GROUP`);
``P{lease}:J`` is the consumer running ``J``, with a TTL its owner keeps refreshing. See
docs/architecture.md §6.
"""

from __future__ import annotations

from typing import Final

from perfgate.jobs.lifecycle import JobInput, rule
from perfgate.priorities import PRIORITIES
from perfgate.redis.scripts.common import LUA_HELPERS
from perfgate.redis.scripts.limits import PURGE_SLOTS

#: A consumer (an instance) with nothing pending and idle this long is removed from the group:
#: it stopped. A live one that was removed is re-created by its next read.
STALE_CONSUMER_MS: Final = 3_600_000

_REQUEUE = rule(JobInput.REQUEUE)

# Claim one stream entry for consumer ARGV[3] (the body of CLAIM_LUA's loop): skip (and ack)
# a job that is gone or finished, leave one whose lease another live consumer holds, else
# take the lease, note where the entry is, and put a job that was running elsewhere back to
# queued, the lifecycle's ``requeue`` (so that its next start counts one more attempt, as a
# restart's recovery does).
_CLAIM_ONE = f"""
local function claim_one(stream, entry, id, out)
  local h = P .. '{{job}}:' .. id
  local state = redis.call('HGET', h, 'state')
  if not state or final(state) then
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
    return
  end
  local lease = P .. '{{lease}}:' .. id
  local holder = redis.call('GET', lease)
  if holder and holder ~= consumer then return end
  local task_json = redis.call('HGET', h, 'task')
  local task = task_json and cjson.decode(task_json)
  local cap = task and caps[task]
  if cap then
    local slots = P .. '{{slots}}:' .. task
    if not redis.call('ZSCORE', slots, id) and redis.call('ZCARD', slots) >= cap then
      -- Over its task's max_concurrency: off the stream (so jobs behind it are read), into
      -- the task's held set, best priority first, until a slot frees.
      redis.call('XACK', stream, group, entry)
      redis.call('XDEL', stream, entry)
      local rank = RANKS[cjson.decode(redis.call('HGET', h, 'priority'))] or 1
      local seq = redis.call('INCR', P .. '{{heldseq}}')
      redis.call('ZADD', P .. '{{held}}:' .. task, rank * 1e13 + seq, id)
      redis.call('HDEL', h, 'qstream', 'qentry', 'owner')
      if requeueable(state) then  -- its instance died mid-run: it waits as queued
        move(h, state, '{_REQUEUE.to_state.value}')
        redis.call('HSET', h, 'state', '{_REQUEUE.to_state.value}')
      end
      return
    end
    redis.call('ZADD', slots, now_ms + lease_ms, id)
  end
  redis.call('SET', lease, consumer, 'PX', lease_ms)
  -- A job this consumer already runs (reclaimed after a pause) keeps its state.
  if requeueable(state) and redis.call('HGET', h, 'owner') ~= consumer then
    move(h, state, '{_REQUEUE.to_state.value}')
    redis.call('HSET', h, 'state', '{_REQUEUE.to_state.value}')
  end
  redis.call('HSET', h, 'owner', consumer, 'qstream', stream, 'qentry', entry)
  out[#out + 1] = {{id, redis.call('HGETALL', h)}}
end
"""

# The priorities as Lua tables, rendered from the one definition.
_LUA_PRIORITIES = "{" + ", ".join(f"'{name}'" for name in PRIORITIES) + "}"
_LUA_RANKS = "{" + ", ".join(f"{name} = {rank}" for rank, name in enumerate(PRIORITIES)) + "}"

# ARGV: prefix, group, consumer, count, lease ms, reclaim idle ms (0: no reclaim), stale
# consumer idle ms, the tasks' max_concurrency caps (JSON object, task -> cap), create the
# consumer group where missing ('1'/'0'; absent means '1'). Reclaims
# entries idle past the lease (their owner stopped refreshing) and drops long-idle consumers with nothing pending, then reads new entries, high priority first;
# at most ``count`` jobs. Returns {{id, HGETALL} per claimed job, {tail id per stream}}.
CLAIM_LUA = (
    LUA_HELPERS
    + """
local group, consumer, count = ARGV[2], ARGV[3], tonumber(ARGV[4])
local lease_ms, idle_ms, stale_ms = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local caps = cjson.decode(ARGV[8] or '{}')
local ensure_groups = ARGV[9] ~= '0'
local RANKS = """
    + _LUA_RANKS
    + """
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""
    + PURGE_SLOTS
    + _CLAIM_ONE
    + """
local out = {}
local streams = {}
for _, priority in ipairs("""
    + _LUA_PRIORITIES
    + """) do
  local stream = P .. '{q}:' .. priority
  streams[#streams + 1] = stream
  -- Only when asked: on the first claim, and after a claim failed (e.g. NOGROUP once Redis
  -- lost its data); recreates the group then.
  if ensure_groups then redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM') end
end
if idle_ms > 0 then
  for _, stream in ipairs(streams) do
    -- Forget consumers (stopped instances) with nothing pending, idle for stale_ms.
    for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
      local c = {}
      for i = 1, #info, 2 do c[info[i]] = info[i + 1] end
      if c['pending'] == 0 and c['idle'] >= stale_ms and c['name'] ~= consumer then
        redis.call('XGROUP', 'DELCONSUMER', stream, group, c['name'])
      end
    end
    if #out < count then
      local r = redis.call('XAUTOCLAIM', stream, group, consumer, idle_ms, '0-0',
                           'COUNT', count - #out)
      for _, e in ipairs(r[2]) do
        if e and e[2] then claim_one(stream, e[1], e[2][2], out) end
      end
    end
  end
end
for _, stream in ipairs(streams) do
  if #out < count then
    local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - #out,
                         'STREAMS', stream, '>')
    if r then
      for _, e in ipairs(r[1][2]) do claim_one(stream, e[1], e[2][2], out) end
    end
  end
end
-- The id of each stream's newest entry ('0-0' when empty), read in this same atomic step:
-- an XREAD BLOCK after these ids wakes on the first entry added after this claim.
local tails = {}
for i, stream in ipairs(streams) do
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if last[1] then tails[i] = last[1][1] else tails[i] = '0-0' end
end
return {out, tails}
"""
)

# ARGV: prefix, group, consumer, lease ms, then job ids. For each job this consumer runs:
# refresh its lease and reset its stream entry's idle time (XCLAIM JUSTID), so no other
# consumer reclaims it. Returns per job: its state, 'gone', or 'lost' (another consumer
# holds it now: stop running it here).
REFRESH_LUA = (
    LUA_HELPERS
    + """
local group, consumer, lease_ms = ARGV[2], ARGV[3], tonumber(ARGV[4])
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local h = P .. '{job}:' .. id
  local row = redis.call('HMGET', h, 'state', 'owner', 'qstream', 'qentry')
  local state = row[1]
  if not state then
    out[#out + 1] = 'gone'
  elseif final(state) then
    out[#out + 1] = state
  else
    local lease = P .. '{lease}:' .. id
    local holder = redis.call('GET', lease)
    if holder == consumer or (not holder and row[2] == consumer) then
      redis.call('SET', lease, consumer, 'PX', lease_ms)
      local task_json = redis.call('HGET', h, 'task')
      if task_json then
        local slots = P .. '{slots}:' .. cjson.decode(task_json)
        redis.call('ZADD', slots, 'XX', now_ms + lease_ms, id)
      end
      if row[3] and row[4] then
        redis.call('XCLAIM', row[3], group, consumer, 0, row[4], 'JUSTID')
      end
      out[#out + 1] = state
    else
      out[#out + 1] = 'lost'
    end
  end
end
return out
"""
)
