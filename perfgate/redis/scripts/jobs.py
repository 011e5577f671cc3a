"""How jobs live in Redis (DESIGN.md section 6): key names, Lua scripts, the record codec.

Pure: no I/O, no trio. :mod:`perfgate.redis.journal` and :mod:`perfgate.redis.queue`
run these scripts. Per job ``J`` (``P`` is the prefix, ``perfgate:`` by default):

* ``P{job}:J`` — a hash. Fields ``state``, ``attempts``, ``ix``, ``log_seq``, ``owner``,
  ``qstream``, ``qentry``, ``idem``, ``tenant`` are raw strings; every other field is JSON text (see
  :func:`encode_fields`). A finished job's hash (and its log list and idempotency key) expire
  ``result_ttl_s`` after it finished; an unfinished job never expires.
* ``P{job}:J:log`` — a list of the last ``max_log_lines`` lines, each ``"SEQ\\tJSON"``.
* ``P{idem}:TENANT/KEY`` — the id of the job that took idempotency key ``KEY`` in tenant
  ``TENANT`` (see :func:`idempotency_slot`; a tenant name holds no ``/``).
* ``P{lease}:J`` — the consumer running ``J``, with a TTL its owner keeps refreshing.
* ``P{ix}:STATE`` and ``P{ix}:all`` — lexicographic sorted sets of ``ix`` members
  (``"%017.6f|ID"`` of ``created_at``), so listing newest first with a keyset cursor is one
  ``ZREVRANGEBYLEX``. Members of expired jobs are pruned when a listing meets them, and by
  the sweep (``P{done}``, finished jobs scored by ``finished_at``, members ``"IX|TENANT"``).
* ``P{tix}:TENANT:STATE`` and ``P{tix}:TENANT:all`` — the same indexes for one tenant's jobs,
  so that a tenant's listing is as direct as the global one (every page full). A job hash
  from before tenants existed counts as :data:`~perfgate.config.DEFAULT_TENANT`'s.
* ``P{q}:PRIORITY`` — the job streams (entry field ``id``), one consumer group ``workers``.
* ``P{slots}:TASK`` — the jobs of a task with a ``max_concurrency`` that hold a slot, scored
  by when the slot lapses unless refreshed (with the job's lease); ``P{held}:TASK`` — that
  task's jobs waiting for a slot, off the streams (so the jobs behind them are read), best
  priority first. Finishing a job frees its slot and puts one held job back on its stream;
  a claim purges lapsed slots (an instance died) and releases as many.
* ``P{sched}`` — delayed jobs (``scheduled``), scored by their ``run_at``: ``DUE_LUA`` moves
  each due one to its stream, once, whichever instance runs it first.

Every transition is one script, so "the first final state wins" and "a final state
acknowledges the stream entry and drops the lease" hold whichever instance writes them. The
sets of states the scripts test (final, requeueable, accepting progress) are rendered from
the lifecycle table (:mod:`perfgate.jobs.lifecycle`, see the job lifecycle section of
docs/architecture.md), and ``TRANSITION_LUA`` is passed its allowed from-states by the journal.
The scripts build some key names from the prefix: fine on one Redis (what perfgate
supports), not on Redis Cluster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from perfgate.config import DEFAULT_TENANT
from perfgate.jobs.lifecycle import (
    FINAL_STATES,
    PROGRESS_STATES,
    JobInput,
    lua_set,
    rule,
)
from perfgate.store.record import JobRecord

DEFAULT_PREFIX: Final = "perfgate:"
GROUP: Final = "workers"
PRIORITY_ORDER: Final = ("high", "normal", "low")
#: Raw (not JSON) hash fields.
RAW_FIELDS: Final = frozenset(
    {"state", "attempts", "ix", "log_seq", "owner", "qstream", "qentry", "idem", "tenant"}
)
_JSON_FIELDS: Final = (
    "task",
    "args",
    "priority",
    "progress",
    "progress_message",
    "result",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "idempotency_key",
    "fingerprint",
    "timeout_s",
    "max_retries",
    "cached",
    "run_at",
)
#: A consumer (an instance) with nothing pending and idle this long is removed from the group:
#: it stopped. A live one that was removed is re-created by its next read.
STALE_CONSUMER_MS: Final = 3_600_000
#: A log line longer than this is cut (as the SQLite journal does).
MAX_LINE_CHARS: Final = 8192


class Keys:
    """The Redis names of one deployment (one prefix)."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix

    def job(self, job_id: str) -> str:
        return f"{self.prefix}{{job}}:{job_id}"

    def log(self, job_id: str) -> str:
        return f"{self.prefix}{{job}}:{job_id}:log"

    def stream(self, priority: str) -> str:
        return f"{self.prefix}{{q}}:{priority}"


def index_member(created_at: float, job_id: str) -> str:
    """The sorted-set member of a job: sorts like ``(created_at, id)`` for positive times."""
    return f"{created_at:017.6f}|{job_id}"


def idempotency_slot(tenant: str, key: str) -> str:
    """Where a tenant's idempotency key lives: keys are unique per tenant, never across."""
    return f"{tenant}/{key}"


def encode_fields(record: JobRecord) -> list[str]:
    """The hash of a new job, as a flat ``[field, value, ...]`` list."""
    values = {
        "task": record.task,
        "args": record.args,
        "priority": record.priority,
        "progress": record.progress,
        "progress_message": record.progress_message,
        "result": record.result,
        "error": record.error,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "idempotency_key": record.idempotency_key,
        "fingerprint": record.fingerprint,
        "timeout_s": record.timeout_s,
        "max_retries": record.max_retries,
        "cached": record.cached,
        "run_at": record.run_at,
    }
    flat = ["state", record.state, "attempts", str(record.attempts)]
    flat += ["ix", index_member(record.created_at, record.id), "log_seq", "0"]
    flat += ["tenant", record.tenant]
    for name in _JSON_FIELDS:
        flat += [name, dumps(values[name])]
    return flat


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)


def pairs(reply: Sequence[Any]) -> dict[str, str]:
    """A Lua ``HGETALL`` reply (flat list) as a dict."""
    return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}


def decode_record(job_id: str, fields: dict[str, str]) -> JobRecord:
    """The record a job hash holds (raises ValueError if it is not one)."""
    try:
        value = {name: json.loads(fields[name]) for name in _JSON_FIELDS if name in fields}
        return JobRecord(
            id=job_id,
            task=value["task"],
            args=value["args"],
            state=fields["state"],
            priority=value["priority"],
            attempts=int(fields["attempts"]),
            progress=float(value["progress"]),
            progress_message=value.get("progress_message"),
            result=value.get("result"),
            error=value.get("error"),
            created_at=float(value["created_at"]),
            started_at=value.get("started_at"),
            finished_at=value.get("finished_at"),
            idempotency_key=value.get("idempotency_key"),
            fingerprint=value.get("fingerprint"),
            timeout_s=value.get("timeout_s"),
            max_retries=int(value.get("max_retries") or 0),
            cached=bool(value.get("cached")),
            tenant=fields.get("tenant") or DEFAULT_TENANT,
            run_at=value.get("run_at"),
        )
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"job {job_id}: malformed hash ({exc})") from None


def encode_log(ts: float, stream: str, line: str) -> str:
    return dumps({"ts": ts, "stream": stream, "line": line[:MAX_LINE_CHARS]})


def decode_logs(entries: Sequence[str], *, after: int, limit: int) -> list[dict[str, Any]]:
    """``"SEQ\\tJSON"`` entries → ``{"seq", "ts", "stream", "line"}`` with ``seq > after``."""
    lines: list[dict[str, Any]] = []
    for entry in entries:
        seq_text, _, body = str(entry).partition("\t")
        seq = int(seq_text)
        if seq <= after:
            continue
        lines.append({"seq": seq, **json.loads(body)})
        if len(lines) >= limit:
            break
    return lines


_FINAL = ",".join(sorted(FINAL_STATES))
_REQUEUE = rule(JobInput.REQUEUE)
#: A job entering ``queued`` from one of these states is not on a stream yet: put it there.
_ENQUEUE_FROM = rule(JobInput.DUE).from_states | rule(JobInput.RERUN).from_states

# Shared Lua helpers. P = prefix. ``final(state)`` and ``requeueable(state)`` test the sets
# of the lifecycle table; ``move(h, from, to)`` keeps the index sets in step with the state.
_LUA_HELPERS = f"""
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
-- Put up to n jobs held back by their task's max_concurrency back on their streams, best
-- first (a claim checks the cap again).
local function release_held(task, n)
  if n <= 0 then return end
  local popped = redis.call('ZPOPMIN', P .. '{{held}}:' .. task, n)
  for i = 1, #popped, 2 do
    local id = popped[i]
    local h = P .. '{{job}}:' .. id
    local priority = redis.call('HGET', h, 'priority')
    local state = redis.call('HGET', h, 'state')
    if priority and state and not final(state) then
      redis.call('XADD', P .. '{{q}}:' .. cjson.decode(priority), '*', 'id', id)
    end
  end
end
local function move(h, from, to)
  local ix = redis.call('HGET', h, 'ix')
  local t = P .. '{{tix}}:' .. tenant_of(h) .. ':'
  redis.call('ZREM', P .. '{{ix}}:' .. from, ix)
  redis.call('ZADD', P .. '{{ix}}:' .. to, 0, ix)
  redis.call('ZREM', t .. from, ix)
  redis.call('ZADD', t .. to, 0, ix)
end
local function finish_keys(h, id, ttl_ms, group)
  redis.call('PEXPIRE', h, ttl_ms)
  redis.call('PEXPIRE', h .. ':log', ttl_ms)
  local idem = redis.call('HGET', h, 'idem')
  if idem then redis.call('PEXPIRE', P .. '{{idem}}:' .. idem, ttl_ms) end
  local ix = redis.call('HGET', h, 'ix')
  redis.call('ZADD', P .. '{{done}}', redis.call('TIME')[1], ix .. '|' .. tenant_of(h))
  local q = redis.call('HMGET', h, 'qstream', 'qentry')
  if q[1] and q[2] then
    redis.call('XACK', q[1], group, q[2])
    redis.call('XDEL', q[1], q[2])
  end
  redis.call('DEL', P .. '{{lease}}:' .. id)
  redis.call('ZREM', P .. '{{sched}}', id)
  local task_json = redis.call('HGET', h, 'task')
  if task_json then
    local task = cjson.decode(task_json)
    redis.call('ZREM', P .. '{{held}}:' .. task, id)
    if redis.call('ZREM', P .. '{{slots}}:' .. task, id) == 1 then release_held(task, 1) end
  end
end
-- A job back in the queue (due, or run again after it ended): it no longer expires, leaves
-- the sweep's set, forgets its old owner (whose run, if still going, is thereby "lost") and
-- gets a new stream entry.
local function enqueue(h, id)
  redis.call('PERSIST', h)
  redis.call('PERSIST', h .. ':log')
  local idem = redis.call('HGET', h, 'idem')
  if idem then redis.call('PERSIST', P .. '{{idem}}:' .. idem) end
  redis.call('ZREM', P .. '{{done}}', redis.call('HGET', h, 'ix') .. '|' .. tenant_of(h))
  redis.call('HDEL', h, 'owner', 'qstream', 'qentry')
  local priority = cjson.decode(redis.call('HGET', h, 'priority'))
  redis.call('XADD', P .. '{{q}}:' .. priority, '*', 'id', id)
end
"""

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

# KEYS: job hash. ARGV: prefix, id, idempotency slot ('' none), ttl ms (when created final),
# stream ('' = do not enqueue), group, then field/value pairs. Returns as ``create_one``.
CREATE_LUA = (
    _LUA_HELPERS
    + _CREATE_ONE
    + """
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
return create_one(KEYS[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], fields)
"""
)

# KEYS: the jobs' hashes. ARGV: prefix, ttl ms, group, then per job: id, idempotency key,
# stream, the number of field/value items, those items. One script: the jobs are created
# together (in order, so a key used twice acts as two submits). Returns one reply per job.
CREATE_MANY_LUA = (
    _LUA_HELPERS
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

# KEYS: job hash. ARGV: prefix, id, allowed from-states (comma-separated, from the lifecycle
# table's rule), increment attempts ('1'/'0'), ttl ms, group, then field/value pairs (raw
# 'state' among them).
# Returns -1 (no such job), 0 (refused: not in an allowed state) or the new HGETALL.
TRANSITION_LUA = (
    _LUA_HELPERS
    + """
local h = KEYS[1]
local state = redis.call('HGET', h, 'state')
if not state then return -1 end
if not string.find(',' .. ARGV[3] .. ',', ',' .. state .. ',', 1, true) then return 0 end
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', h, unpack(fields))
if ARGV[4] == '1' then redis.call('HINCRBY', h, 'attempts', 1) end
local new = redis.call('HGET', h, 'state')
if new ~= state then move(h, state, new) end
if final(new) then finish_keys(h, ARGV[2], tonumber(ARGV[5]), ARGV[6]) end
if new == 'queued' and enqueued_from(state) then enqueue(h, ARGV[2]) end
return redis.call('HGETALL', h)
"""
)

# ARGV: prefix, now (epoch s), at most this many jobs. Moves each delayed job due by ``now``
# to its stream (the lifecycle's ``due``; a job cancelled meanwhile is only dropped from the
# set). One script, so each due job is moved once, whichever instance runs it.
# Returns {moved, the soonest due time left ('' if none)}.
DUE_LUA = (
    _LUA_HELPERS
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

# ARGV: prefix, group, consumer, count, lease ms, reclaim idle ms (0: no reclaim), stale
# consumer idle ms, the tasks' max_concurrency caps (JSON object, task -> cap). Reclaims entries idle past the lease (their owner stopped refreshing) and
# drops long-idle consumers with nothing pending, then reads new entries, high priority first;
# at most ``count`` jobs. Returns {{id, HGETALL} per claimed job, {tail id per stream}}.
CLAIM_LUA = (
    _LUA_HELPERS
    + """
local group, consumer, count = ARGV[2], ARGV[3], tonumber(ARGV[4])
local lease_ms, idle_ms, stale_ms = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local caps = cjson.decode(ARGV[8] or '{}')
local RANKS = {high = 0, normal = 1, low = 2}
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
-- Slots whose holder stopped refreshing them (its instance died) are free again; each free
-- slot lets one held job back onto its stream.
for task, cap in pairs(caps) do
  local slots = P .. '{slots}:' .. task
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now_ms)
  release_held(task, math.min(cap - redis.call('ZCARD', slots), redis.call('ZCARD', P .. '{held}:' .. task)))
end
"""
    + _CLAIM_ONE
    + """
local out = {}
local streams = {}
for _, priority in ipairs({'high', 'normal', 'low'}) do
  local stream = P .. '{q}:' .. priority
  streams[#streams + 1] = stream
  -- Cheap when the group exists; recreates it after Redis lost its data.
  redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
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
    _LUA_HELPERS
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
