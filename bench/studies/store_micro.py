"""Journal micro-benchmark: durable creates (sequential vs concurrent) and log appends.

    .venv/bin/python bench/studies/store_micro.py [DATA_DIR]

Prints rates; group commit shows as the ratio of concurrent to sequential creates.
Not part of the gate: a quick look at whether SQLite is the bottleneck.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import trio

from perfgate.store import JobRecord, Journal, new_job_id


def job() -> JobRecord:
    return JobRecord(id=new_job_id(), task="echo", args={"x": 1})


async def main(data_dir: Path) -> None:
    async with Journal.open(data_dir, max_log_lines=1000, result_ttl_s=3600) as journal:
        n = 300
        start = time.perf_counter()
        for _ in range(n):
            await journal.create(job())
        seq_rate = n / (time.perf_counter() - start)

        n_conc = 2000
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(n_conc):
                nursery.start_soon(journal.create, job())
        conc_rate = n_conc / (time.perf_counter() - start)

        target, _ = await journal.create(job())
        await journal.mark_running(target.id)
        lines = 50_000
        start = time.perf_counter()
        for i in range(lines):
            await journal.append_log(target.id, f"line {i} " + "x" * 60, "stdout")
        await journal.flush()
        log_rate = lines / (time.perf_counter() - start)
        stats = journal.stats()
    print(f"sequential durable creates: {seq_rate:8.0f}/s")
    print(f"concurrent durable creates: {conc_rate:8.0f}/s  ({conc_rate / seq_rate:.1f}x)")
    print(f"log lines appended:         {log_rate:8.0f}/s")
    print(f"writer: {stats.ops} ops in {stats.batches} transactions")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        trio.run(main, Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory(dir=".") as tmp:
            trio.run(main, Path(tmp))
