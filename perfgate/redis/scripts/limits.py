"""The Lua of per-task ``max_concurrency`` across instances: slots and held jobs.

Pure: no I/O. ``P{slots}:TASK`` holds the jobs of a capped task that hold a slot, scored by
when the slot lapses unless refreshed (with the job's lease); ``P{held}:TASK`` holds that
task's jobs waiting for a slot, off the streams (so the jobs behind them are read), best
priority first. Finishing a job frees its slot and puts one held job back on its stream
(``finish_keys`` in :mod:`perfgate.redis.scripts.common`); a claim purges lapsed slots (an
instance died) and releases as many (:data:`PURGE_SLOTS`); a claim over the cap holds the job
and the refresh keeps a slot alive (:mod:`perfgate.redis.scripts.queue`). See
docs/architecture.md §6.
"""

from __future__ import annotations

# A helper of LUA_HELPERS (it uses ``P`` and ``final``).
RELEASE_HELD = """\
-- Put up to n jobs held back by their task's max_concurrency back on their streams, best
-- first (a claim checks the cap again).
local function release_held(task, n)
  if n <= 0 then return end
  local popped = redis.call('ZPOPMIN', P .. '{held}:' .. task, n)
  for i = 1, #popped, 2 do
    local id = popped[i]
    local h = P .. '{job}:' .. id
    local priority = redis.call('HGET', h, 'priority')
    local state = redis.call('HGET', h, 'state')
    if priority and state and not final(state) then
      redis.call('XADD', P .. '{q}:' .. cjson.decode(priority), '*', 'id', id)
    end
  end
end
"""

# The start of a claim, after LUA_HELPERS and once ``caps`` and ``now_ms`` are set.
PURGE_SLOTS = """\
-- Slots whose holder stopped refreshing them (its instance died) are free again; each free
-- slot lets one held job back onto its stream.
for task, cap in pairs(caps) do
  local slots = P .. '{slots}:' .. task
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now_ms)
  release_held(task, math.min(cap - redis.call('ZCARD', slots), redis.call('ZCARD', P .. '{held}:' .. task)))
end
"""
