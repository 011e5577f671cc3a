"""The Lua helpers every job script shares, with the state sets rendered from the lifecycle.

Pure: no I/O. The sets of states the scripts test (final, requeueable, enqueued from) are
rendered from the lifecycle table (:mod:`perfgate.jobs.lifecycle`; see the job lifecycle
section of docs/architecture.md), so the table stays the one definition; a script that
changes state (``TRANSITION_MANY_LUA``) is passed each job's allowed from-states by the journal.
"""

from __future__ import annotations

from perfgate.config import DEFAULT_TENANT
from perfgate.jobs.lifecycle import FINAL_STATES, JobInput, lua_set, rule
from perfgate.redis.scripts.limits import RELEASE_HELD

_REQUEUE = rule(JobInput.REQUEUE)
#: A job entering ``queued`` from one of these states is not on a stream yet: put it there.
_ENQUEUE_FROM = rule(JobInput.DUE).from_states | rule(JobInput.RERUN).from_states

# Shared Lua helpers. P = prefix. ``final(state)`` and ``requeueable(state)`` test the sets
# of the lifecycle table; ``move(h, from, to)`` keeps the index sets in step with the state.
LUA_HELPERS = (
    f"""
local P = ARGV[1]
local function final(state)
  return string.find('{lua_set(FINAL_STATES)}', ',' .. state .. ',', 1, true) ~= nil
end
local function requeueable(state)
  return string.find('{lua_set(_REQUEUE.from_states)}', ',' .. state .. ',', 1, true) ~= nil
end
local function enqueued_from(state)
  return string.find('{lua_set(_ENQUEUE_FROM)}', ',' .. state .. ',', 1, true) ~= nil
end
local function tenant_of(h)
  return redis.call('HGET', h, 'tenant') or '{DEFAULT_TENANT}'
end
"""
    + RELEASE_HELD
    + """\
local function move(h, from, to)
  local ix = redis.call('HGET', h, 'ix')
  local t = P .. '{tix}:' .. tenant_of(h) .. ':'
  redis.call('ZREM', P .. '{ix}:' .. from, ix)
  redis.call('ZADD', P .. '{ix}:' .. to, 0, ix)
  redis.call('ZREM', t .. from, ix)
  redis.call('ZADD', t .. to, 0, ix)
end
local function finish_keys(h, id, ttl_ms, group)
  redis.call('PEXPIRE', h, ttl_ms)
  redis.call('PEXPIRE', h .. ':log', ttl_ms)
  local idem = redis.call('HGET', h, 'idem')
  if idem then redis.call('PEXPIRE', P .. '{idem}:' .. idem, ttl_ms) end
  local ix = redis.call('HGET', h, 'ix')
  redis.call('ZADD', P .. '{done}', redis.call('TIME')[1], ix .. '|' .. tenant_of(h))
  local q = redis.call('HMGET', h, 'qstream', 'qentry')
  if q[1] and q[2] then
    redis.call('XACK', q[1], group, q[2])
    redis.call('XDEL', q[1], q[2])
  end
  redis.call('DEL', P .. '{lease}:' .. id)
  redis.call('ZREM', P .. '{sched}', id)
  local task_json = redis.call('HGET', h, 'task')
  if task_json then
    local task = cjson.decode(task_json)
    redis.call('ZREM', P .. '{held}:' .. task, id)
    if redis.call('ZREM', P .. '{slots}:' .. task, id) == 1 then release_held(task, 1) end
  end
end
-- A job back in the queue (due, or run again after it ended): it no longer expires, leaves
-- the sweep's set, forgets its old owner (whose run, if still going, is thereby "lost") and
-- gets a new stream entry.
local function enqueue(h, id)
  redis.call('PERSIST', h)
  redis.call('PERSIST', h .. ':log')
  local idem = redis.call('HGET', h, 'idem')
  if idem then redis.call('PERSIST', P .. '{idem}:' .. idem) end
  redis.call('ZREM', P .. '{done}', redis.call('HGET', h, 'ix') .. '|' .. tenant_of(h))
  redis.call('HDEL', h, 'owner', 'qstream', 'qentry')
  local priority = cjson.decode(redis.call('HGET', h, 'priority'))
  redis.call('XADD', P .. '{q}:' .. priority, '*', 'id', id)
end
"""
)
