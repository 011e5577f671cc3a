"""Summarise py-spy collapsed stacks (``py-spy record -f raw``): self and inclusive time.

    .venv/bin/python bench/studies/pyspy_top.py STACKS [--top 40] [--match TEXT]

Inclusive counts a frame once per sample however deep it recurs. ``--match`` keeps only the
samples whose stack contains ``TEXT`` (e.g. a module path), to see one path's share.
"""

from __future__ import annotations

import argparse
import collections
import re

_LINE = re.compile(r"\s*\(([^)]*?)(?::\d+)?\)$")


def _frame(raw: str) -> str:
    # "fn (path/to/module.py:123)" -> "fn (module.py)"
    name, _, where = raw.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(where.split('/')[-2:])})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("stacks")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match")
    args = parser.parse_args()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    with open(args.stacks) as f:
        for line in f:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or (args.match and args.match not in stack):
                continue
            count = int(count_text)
            frames = [_frame(x) for x in stack.split(";")]
            if frames and frames[0].startswith("process "):
                frames = frames[1:]
            if frames and frames[0].startswith("thread "):
                frames = frames[1:]
            total += count
            if frames:
                own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    print(f"samples: {total}")
    print("-- self --")
    for frame, count in own.most_common(args.top):
        print(f"{100 * count / total:5.1f}%  {frame}")
    print("-- inclusive --")
    for frame, count in inclusive.most_common(args.top):
        print(f"{100 * count / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
