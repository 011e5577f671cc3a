"""The gateway's handshake pace: a reconnect storm is admitted at a steady rate, not at once.

After a restart every client reconnects within the same second or two. Admitting them all at
once costs a burst of handshakes, welcome frames, subscriptions and (with each subscription's
replay) history reads, and stalls every connection already open, whose pings and messages
wait behind the burst (issue 16.4). So the gateway admits new connections through one token
bucket, ``[gateway] accept_rate_per_s`` with a burst of ``accept_burst`` (0: no pace):

- within the burst, a handshake goes straight through;
- over it, a handshake *waits* for its turn, up to :data:`MAX_WAIT_S`: each waiting
  handshake has reserved its token, so they are admitted one per ``1 / rate`` in arrival
  order (a short wait costs the client less than a refusal and a reconnect);
- past that, it is *refused*: HTTP 503 with a ``Retry-After`` header. Holding it longer would
  only pile up sockets and tasks the server cannot serve sooner. Refused clients are handed
  out later turns one per ``1 / rate`` (their ``Retry-After`` grows with the queue), so the
  ones that honour the header come back spread out, not in a second storm.

Pure bookkeeping, time passed in as seconds; the gateway sleeps or refuses
(:meth:`perfgate.gateway.server.Gateway._open`).
"""

from __future__ import annotations

import math

from perfgate.ratelimit import TokenBucket

MAX_WAIT_S = 1.0
"""The longest a handshake waits for its turn before it is refused with 503."""


class AcceptPace:
    """Admission of new connections at ``rate_per_s`` with a burst of ``burst``: a
    :class:`~perfgate.ratelimit.TokenBucket` whose waiting handshakes reserve tokens of the
    future, plus the turns handed to refused clients."""

    __slots__ = ("_retry_at", "bucket", "max_wait_s", "refused", "waited")

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        *,
        now: float = -math.inf,
        max_wait_s: float = MAX_WAIT_S,
    ) -> None:
        self.bucket = TokenBucket(rate_per_s, max(1.0, burst), updated_at=now)
        self.max_wait_s = max_wait_s
        self._retry_at = now  # the last turn handed to a refused client
        self.waited = 0
        self.refused = 0

    @property
    def rate_per_s(self) -> float:
        return self.bucket.rate_per_s

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def admit(self, now: float) -> tuple[bool, float]:
        """A handshake arrives at ``now``. ``(True, wait_s)``: admitted after ``wait_s``
        seconds (0.0: at once), its turn taken; ``(False, retry_after_s)``: refused, come
        back after that long (a turn from the refused clients' own queue)."""
        if self.rate_per_s <= 0:
            return True, 0.0
        wait_s = self.bucket.wait_s(now)
        if wait_s <= self.max_wait_s:
            self.bucket.reserve(now)
            if wait_s > 0:
                self.waited += 1
            return True, wait_s
        self.refused += 1
        # A later turn for each refused client, beyond what the waiting ones hold.
        self._retry_at = max(self._retry_at, now + wait_s) + 1.0 / self.rate_per_s
        return False, self._retry_at - now
