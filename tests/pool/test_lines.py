"""Splitting a worker's output into bounded lines."""

from __future__ import annotations

from perfgate.pool.lines import LineSplitter


def test_lines_split_across_chunks_and_flush() -> None:
    splitter = LineSplitter(100)
    assert splitter.feed(b"one\ntw") == ["one"]
    assert splitter.feed(b"o\r\nthree") == ["two"]
    assert splitter.flush() == ["three"]
    assert splitter.flush() == []


def test_long_line_is_cut_not_buffered_forever() -> None:
    splitter = LineSplitter(4)
    assert splitter.feed(b"abcdefghij") == ["abcd", "efgh"]
    assert splitter.feed(b"\n") == ["ij"]


def test_invalid_utf8_is_replaced() -> None:
    assert LineSplitter(10).feed(b"\xff\n") == ["\ufffd"]
