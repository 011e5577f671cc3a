"""The Lua of delayed jobs: queue the ones that are due, once across instances.

Pure: no I/O. ``P{sched}`` is a sorted set of delayed (``scheduled``) jobs scored by their
``run_at``; every instance's queue polls it with :data:`DUE_LUA`, which moves each due job to
its stream (the lifecycle's ``due``) exactly once, whichever instance runs it first. See
:mod:`perfgate.jobs.delayed` for due times, and docs/architecture.md §6.
"""

from __future__ import annotations

from perfgate.jobs.lifecycle import JobInput, lua_set, rule
from perfgate.redis.scripts.common import LUA_HELPERS

# ARGV: prefix, now (epoch s), at most this many jobs. Moves each delayed job due by ``now``
# to its stream (the lifecycle's ``due``; a job cancelled meanwhile is only dropped from the
# set). One script, so each due job is moved once, whichever instance runs it.
# Returns {moved, the soonest due time left ('' if none)}.
DUE_LUA = (
    LUA_HELPERS
    + f"""
local due = redis.call('ZRANGEBYSCORE', P .. '{{sched}}', '-inf', ARGV[2],
                       'LIMIT', 0, tonumber(ARGV[3]))
local moved = 0
for _, id in ipairs(due) do
  redis.call('ZREM', P .. '{{sched}}', id)
  local h = P .. '{{job}}:' .. id
  local state = redis.call('HGET', h, 'state')
  if state and string.find('{lua_set(rule(JobInput.DUE).from_states)}', ',' .. state .. ',', 1, true) then
    redis.call('HSET', h, 'state', '{rule(JobInput.DUE).to_state.value}')
    move(h, state, '{rule(JobInput.DUE).to_state.value}')
    enqueue(h, id)
    moved = moved + 1
  end
end
local soonest = redis.call('ZRANGE', P .. '{{sched}}', 0, 0, 'WITHSCORES')
return {{moved, soonest[2] or ''}}
"""
)
