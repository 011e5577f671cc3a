"""What the Redis hub stores and sends, and how it decides a replay: pure, no I/O, no trio.

Per channel ``C`` (``P`` is the key prefix, ``perfgate:`` by default):

* ``P{ch}:C:meta`` — a hash: ``offset`` (the last offset given out), ``epoch`` and ``bytes``
  (what the history stream holds). Offsets are
  allocated here by ``HINCRBY`` inside the publish script, so they increase by one per channel
  whichever instance publishes. A new ``epoch`` is written (and the history dropped) whenever
  the hash is missing: a Redis restart without persistence, or a channel idle past its TTL.
* ``P{ch}:C:hist`` — a stream of at most ``history_size`` entries and ``history_bytes`` payload
  bytes, expiring ``history_ttl_s`` after the last publish; entry id ``OFFSET-0``, so a
  ``since`` replay is ``XRANGE (since+1) +``; field ``m`` holds the payload.
* pub/sub channel ``P{msg}:C`` — the payload, published in the same script as the ``XADD``, so
  pub/sub order is offset order.

Payload: ``"OFFSET PRIORITY PUBLISHED_AT JSON"`` (space-separated; the JSON is last and may
contain spaces). ``PUBLISHED_AT`` is wall-clock epoch seconds, shared across instances.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from perfgate.broker._frame import encode_data as encode_data
from perfgate.broker._history import Message, Replay

DEFAULT_PREFIX = "perfgate:"

#: How long a channel's offset and epoch survive without a publish (or a local subscriber
#: keeping it alive, see RedisHub's refresh loop). At least the history's age limit: a shorter
#: TTL would change the epoch under history that is still retained.
MIN_CHANNEL_TTL_S = 3600.0

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


@attrs.frozen
class Keys:
    """The Redis names of one deployment (one prefix)."""

    prefix: str = DEFAULT_PREFIX

    def meta(self, channel: str) -> str:
        return f"{self.prefix}{{ch}}:{channel}:meta"

    def history(self, channel: str) -> str:
        return f"{self.prefix}{{ch}}:{channel}:hist"

    def pubsub(self, channel: str) -> str:
        return f"{self.prefix}{{msg}}:{channel}"

    @property
    def pubsub_pattern(self) -> str:
        return f"{self.prefix}{{msg}}:*"

    def channel_of(self, pubsub_channel: str) -> str | None:
        """The perfgate channel of a pub/sub channel name; None if not one of ours."""
        head = f"{self.prefix}{{msg}}:"
        return pubsub_channel[len(head) :] if pubsub_channel.startswith(head) else None


def channel_ttl_s(history_ttl_s: float) -> float:
    return max(MIN_CHANNEL_TTL_S, 2 * history_ttl_s)


_JSON_STARTS = frozenset('{["-0123456789tfn')


def decode_payload(channel: str, payload: str) -> Message:
    """A payload back into a :class:`Message`; raises ValueError if malformed.

    The JSON is framed as it is, not parsed and encoded again: it was encoded by
    :func:`encode_data` at publish (its first character is checked, cheaply, so that a
    stray payload on our channels cannot break a frame's structure)."""
    offset, priority, published_at, body = payload.split(" ", 3)
    if not body or body[0] not in _JSON_STARTS:
        raise ValueError("payload data is not JSON")
    return Message.from_json(channel, int(offset), body, priority, float(published_at))


def decode_entries(channel: str, entries: Sequence[Any]) -> list[Message]:
    """``XRANGE`` entries (``[id, [field, value, ...]]``) into messages, oldest first."""
    messages = []
    for _entry_id, fields in entries:
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        messages.append(decode_payload(channel, values["m"]))
    return messages


def replay_after(
    *,
    since: int | None,
    epoch: str | None,
    channel_epoch: str,
    channel_offset: int,
    retained: Sequence[Message],
    now: float,
    history_ttl_s: float,
) -> Replay:
    """The replay a subscriber with ``since``/``epoch`` gets, given what Redis returned.

    The same rules as :meth:`ChannelHistory.since`: not recovered for another epoch, an
    offset ahead of the channel, or when the first message after ``since`` is gone (trimmed
    by ``MAXLEN``, or older than ``history_ttl_s``).
    """
    if since is None:
        return Replay(channel_epoch, channel_offset, recovered=True)
    if (epoch is not None and epoch != channel_epoch) or since > channel_offset or since < 0:
        return Replay(channel_epoch, channel_offset, recovered=False)
    if since == channel_offset:
        return Replay(channel_epoch, channel_offset, recovered=True)
    cutoff = now - history_ttl_s
    kept = [m for m in retained if m.offset > since and m.published_at >= cutoff]
    if not kept or kept[0].offset != since + 1:
        return Replay(channel_epoch, channel_offset, recovered=False)
    return Replay(channel_epoch, channel_offset, recovered=True, messages=tuple(kept))


@attrs.define
class Backoff:
    """Reconnect delays: doubling from ``initial_s`` up to ``max_s``; :meth:`reset` on success."""

    initial_s: float = 0.1
    max_s: float = 5.0
    _next_s: float = attrs.field(default=0.0, init=False)

    def next(self) -> float:
        delay = self._next_s or self.initial_s
        self._next_s = min(self.max_s, delay * 2)
        return delay

    def reset(self) -> None:
        self._next_s = 0.0
