"""How jobs live in Redis: the journal's Lua scripts (see docs/architecture.md §6).

Pure: no I/O, no trio. :mod:`perfgate.redis.journal` runs these scripts (the queue's are in
:mod:`perfgate.redis.scripts.queue`, the task limits' in :mod:`perfgate.redis.scripts.limits`,
the delayed jobs' in :mod:`perfgate.redis.scripts.delayed`). Per job ``J`` (``P`` is the prefix, ``perfgate:`` by default):

* ``P{job}:J`` — a hash. Fields ``state``, ``attempts``, ``ix``, ``log_seq``, ``owner``,
  ``qstream``, ``qentry``, ``idem``, ``tenant`` are raw strings; every other field is JSON text (see
  :func:`perfgate.redis.codec.encode_fields`). A finished job's hash (and its log list and idempotency key) expire
  ``result_ttl_s`` after it finished; an unfinished job never expires.
* ``P{job}:J:log`` — a list of the last ``max_log_lines`` lines, each ``"SEQ\\tJSON"``.
* ``P{idem}:TENANT/KEY`` — the id of the job that took idempotency key ``KEY`` in tenant
  ``TENANT`` (see :func:`perfgate.redis.keys.idempotency_slot`; a tenant name holds no ``/``).
* ``P{lease}:J`` — the consumer running ``J``, with a TTL its owner keeps refreshing.
* ``P{ix}:STATE`` and ``P{ix}:all`` — lexicographic sorted sets of ``ix`` members
  (``"%017.6f|ID"`` of ``created_at``), so listing newest first with a keyset cursor is one
  ``ZREVRANGEBYLEX``. Members of expired jobs are pruned when a listing meets them, and by
  the sweep (``P{done}``, finished jobs scored by ``finished_at``, members ``"IX|TENANT"``).
* ``P{tix}:TENANT:STATE`` and ``P{tix}:TENANT:all`` — the same indexes for one tenant's jobs,
  so that a tenant's listing is as direct as the global one (every page full). A job hash
  from before tenants existed counts as :data:`~perfgate.config.DEFAULT_TENANT`'s.
* ``P{q}:PRIORITY`` — the job streams (entry field ``id``), one consumer group ``workers``.
* ``P{slots}:TASK``, ``P{held}:TASK`` — per-task ``max_concurrency`` (see
  :mod:`perfgate.redis.scripts.limits`).
* ``P{sched}`` — delayed jobs (``scheduled``), scored by their ``run_at``: ``DUE_LUA``
  (:mod:`perfgate.redis.scripts.delayed`) moves each due one to its stream, once.

Every transition is one script, so "the first final state wins" and "a final state
acknowledges the stream entry and drops the lease" hold whichever instance writes them. The
sets of states the scripts test are rendered from the lifecycle table (see
:mod:`perfgate.redis.scripts.common`), and ``TRANSITION_MANY_LUA`` is passed each job's allowed
from-states by the journal.
"""

from __future__ import annotations

from perfgate.jobs.lifecycle import FINAL_STATES, PROGRESS_STATES, lua_set
from perfgate.redis.scripts.common import LUA_HELPERS

_FINAL = ",".join(sorted(FINAL_STATES))

# Create one job: its hash h, id, idempotency slot ('' none; the tenant's key), ttl ms
# (when created final), stream ('' = do not enqueue), group, field/value pairs.
# Returns {1, id} (created) or {0, earlier id} (the key is taken by a live job).
_CREATE_ONE = """
local function create_one(h, id, key, ttl, stream, group, fields)
  if key ~= '' then
    local ik = P .. '{idem}:' .. key
    local earlier = redis.call('GET', ik)
    if earlier and redis.call('EXISTS', P .. '{job}:' .. earlier) == 1 then
      return {0, earlier}
    end
    redis.call('SET', ik, id)
  end
  redis.call('HSET', h, unpack(fields))
  if key ~= '' then redis.call('HSET', h, 'idem', key) end
  local state = redis.call('HGET', h, 'state')
  local ix = redis.call('HGET', h, 'ix')
  local t = P .. '{tix}:' .. tenant_of(h) .. ':'
  redis.call('ZADD', P .. '{ix}:all', 0, ix)
  redis.call('ZADD', P .. '{ix}:' .. state, 0, ix)
  redis.call('ZADD', t .. 'all', 0, ix)
  redis.call('ZADD', t .. state, 0, ix)
  if final(state) then finish_keys(h, id, ttl, group) end
  if state == 'scheduled' then
    redis.call('ZADD', P .. '{sched}', tonumber(redis.call('HGET', h, 'run_at')) or 0, id)
  end
  if stream ~= '' then redis.call('XADD', stream, '*', 'id', id) end
  return {1, id}
end
"""

# KEYS: the jobs' hashes. ARGV: prefix, ttl ms, group, then per job: id, idempotency key,
# stream, the number of field/value items, those items. One script: the jobs are created
# together (in order, so a key used twice acts as two submits). Returns one reply per job.
CREATE_MANY_LUA = (
    LUA_HELPERS
    + _CREATE_ONE
    + """
local ttl, group = tonumber(ARGV[2]), ARGV[3]
local out, i = {}, 4
for n = 1, #KEYS do
  local id, key, stream, count = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local fields = {}
  for j = i + 4, i + 3 + count do fields[#fields + 1] = ARGV[j] end
  out[n] = create_one(KEYS[n], id, key, ttl, stream, group, fields)
  i = i + 4 + count
end
return out
"""
)

# Apply one transition to job hash h: id, allowed from-states (comma-separated, from the
# lifecycle table's rule), increment attempts ('1'/'0'), ttl ms, group, field/value pairs
# (raw 'state' among them). Returns -1 (no such job), 0 (refused: not in an allowed state) or
# the new HGETALL.
_TRANSITION_ONE = """
local function transition_one(h, id, allowed, incr, ttl, group, fields)
  local state = redis.call('HGET', h, 'state')
  if not state then return -1 end
  if not string.find(',' .. allowed .. ',', ',' .. state .. ',', 1, true) then return 0 end
  redis.call('HSET', h, unpack(fields))
  if incr == '1' then redis.call('HINCRBY', h, 'attempts', 1) end
  local new = redis.call('HGET', h, 'state')
  if new ~= state then move(h, state, new) end
  if final(new) then finish_keys(h, id, ttl, group) end
  if new == 'queued' and enqueued_from(state) then enqueue(h, id) end
  return redis.call('HGETALL', h)
end
"""

# KEYS: the jobs' hashes. ARGV: prefix, ttl ms, group, then per job: id, allowed from-states,
# increment attempts ('1'/'0'), the number of field/value items, those items. Several
# transitions in one script (the journal coalesces concurrent ones: see
# perfgate/redis/coalesce.py), applied in order. Returns one ``transition_one`` reply per job.
TRANSITION_MANY_LUA = (
    LUA_HELPERS
    + _TRANSITION_ONE
    + """
local ttl, group = tonumber(ARGV[2]), ARGV[3]
local out, i = {}, 4
for n = 1, #KEYS do
  local id, allowed, incr, count = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local fields = {}
  for j = i + 4, i + 3 + count do fields[#fields + 1] = ARGV[j] end
  out[n] = transition_one(KEYS[n], id, allowed, incr, ttl, group, fields)
  i = i + 4 + count
end
return out
"""
)

# KEYS: job hash. ARGV: prefix, fraction (JSON), message (JSON). Only while running.
PROGRESS_LUA = f"""
local state = redis.call('HGET', KEYS[1], 'state')
if state and string.find('{lua_set(PROGRESS_STATES)}', ',' .. state .. ',', 1, true) then
  redis.call('HSET', KEYS[1], 'progress', ARGV[2], 'progress_message', ARGV[3])
end
return 0
"""

# KEYS: job hash, log list. ARGV: prefix, entry JSON, max lines.
LOG_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local seq = redis.call('HINCRBY', KEYS[1], 'log_seq', 1)
redis.call('RPUSH', KEYS[2], seq .. '\\t' .. ARGV[2])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return seq
"""

# ARGV: prefix, state ('all' for every state), cursor member ('' for the first page), limit,
# tenant ('' for every tenant). Returns up to limit+1 {member, HGETALL} of live jobs, newest
# first; prunes dead members.
LIST_LUA = """
local P, limit = ARGV[1], tonumber(ARGV[4])
local scope = P .. '{ix}:'
if ARGV[5] ~= '' then scope = P .. '{tix}:' .. ARGV[5] .. ':' end
local key = scope .. ARGV[2]
local upper = '+'
if ARGV[3] ~= '' then upper = '(' .. ARGV[3] end
local out, scanned = {}, 0
while #out <= limit and scanned < 10 * (limit + 1) + 100 do
  local batch = redis.call('ZREVRANGEBYLEX', key, upper, '-', 'LIMIT', 0, limit + 1)
  if #batch == 0 then break end
  for _, member in ipairs(batch) do
    scanned = scanned + 1
    local id = string.sub(member, string.find(member, '|', 1, true) + 1)
    local fields = redis.call('HGETALL', P .. '{job}:' .. id)
    if #fields == 0 then
      redis.call('ZREM', key, member)
      redis.call('ZREM', scope .. 'all', member)
    elseif #out <= limit then
      out[#out + 1] = {id, fields}
    end
  end
  upper = '(' .. batch[#batch]
end
return out
"""

# ARGV: prefix, cutoff (epoch s), chunk. Drops index members of jobs whose hash expired.
SWEEP_LUA = f"""
local P = ARGV[1]
local done = P .. '{{done}}'
local members = redis.call('ZRANGEBYSCORE', done, '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
local removed = 0
for _, member in ipairs(members) do
  -- "IX|TENANT" (IX is "CREATED|ID"); a member written before tenants existed is just IX.
  local bar = string.find(member, '|', 1, true)
  local rest = string.sub(member, bar + 1)
  local id, ix, tenant = rest, member, nil
  local bar2 = string.find(rest, '|', 1, true)
  if bar2 then
    id = string.sub(rest, 1, bar2 - 1)
    ix = string.sub(member, 1, bar + bar2 - 1)
    tenant = string.sub(rest, bar2 + 1)
  end
  if redis.call('EXISTS', P .. '{{job}}:' .. id) == 0 then
    local scopes = {{P .. '{{ix}}:'}}
    if tenant then scopes[2] = P .. '{{tix}}:' .. tenant .. ':' end
    for _, scope in ipairs(scopes) do
      redis.call('ZREM', scope .. 'all', ix)
      for state in string.gmatch('{_FINAL}', '[^,]+') do
        redis.call('ZREM', scope .. state, ix)
      end
    end
    removed = removed + 1
  end
  redis.call('ZREM', done, member)
end
return removed
"""
