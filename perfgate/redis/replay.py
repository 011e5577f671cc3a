"""How the Redis hub decides a subscriber's replay, and how long a channel lives: pure, no
I/O, no trio. See docs/architecture.md §6."""

from __future__ import annotations

from collections.abc import Sequence

from perfgate.broker._history import Message, Replay

#: How long a channel's offset and epoch survive without a publish (or a local subscriber
#: keeping it alive, see RedisHub's refresh loop). At least the history's age limit: a shorter
#: TTL would change the epoch under history that is still retained.
MIN_CHANNEL_TTL_S = 3600.0


def channel_ttl_s(history_ttl_s: float) -> float:
    return max(MIN_CHANNEL_TTL_S, 2 * history_ttl_s)


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
