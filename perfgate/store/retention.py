"""Retention policy: how often the sweep runs and how log lines are bounded.

Pure: no I/O, no clock. The journal's trio shell applies these.

Log cap policy: a job keeps its **last** ``max_log_lines`` lines; older ones are deleted as
new ones arrive. The end of a log is where a failed build or a traceback shows, so it is the
part worth keeping; line numbers (``seq``) keep counting, so a reader sees where lines were
dropped (the first kept ``seq`` is above 1).
"""

from __future__ import annotations

#: The sweep runs every ``result_ttl_s / SWEEP_DIVISOR`` seconds, so a finished job outlives
#: its TTL by at most a tenth of it, but never more often than :data:`SWEEP_MIN_PERIOD_S`
#: (a tiny TTL must not turn the sweep into a busy loop) nor less often than
#: :data:`SWEEP_MAX_PERIOD_S` (a day-long TTL must not let a day's garbage pile up in one go).
SWEEP_DIVISOR = 10.0
SWEEP_MIN_PERIOD_S = 1.0
SWEEP_MAX_PERIOD_S = 300.0
#: Jobs deleted per transaction, so a large sweep never holds the writer for long.
SWEEP_CHUNK = 500
#: One log line is cut to this many characters: a command that prints megabytes without a
#: newline must not put a megabyte row in the journal.
MAX_LOG_LINE_CHARS = 8192
TRUNCATION_MARK = "… [truncated]"


def sweep_period_s(result_ttl_s: float) -> float:
    """Seconds between two retention sweeps for a given result TTL."""
    return min(SWEEP_MAX_PERIOD_S, max(SWEEP_MIN_PERIOD_S, result_ttl_s / SWEEP_DIVISOR))


def clip_line(line: str) -> str:
    """``line`` without its trailing newline, cut to :data:`MAX_LOG_LINE_CHARS`."""
    line = line.rstrip("\r\n")
    if len(line) <= MAX_LOG_LINE_CHARS:
        return line
    return line[: MAX_LOG_LINE_CHARS - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def first_kept_seq(last_seq: int, max_log_lines: int) -> int:
    """With lines numbered 1..``last_seq``, the lowest ``seq`` the cap keeps."""
    return max(1, last_seq - max_log_lines + 1)
