"""HDR wrappers: recording in ms, shipping between processes, merging, percentiles."""

from __future__ import annotations

import pytest

from perfgate.bench import histogram as hdr


def filled(values_ms: list[float]) -> str:
    h = hdr.new_histogram()
    for v in values_ms:
        hdr.record_ms(h, v)
    return hdr.encode(h)


def test_merge_of_encoded_histograms_holds_every_value() -> None:
    a = filled([1.0] * 90)
    b = filled([100.0] * 10)
    merged = hdr.merge([a, b])
    assert merged.get_total_count() == 100
    summary = hdr.summary_ms(merged)
    assert summary["p50"] == pytest.approx(1.0, rel=0.01)
    assert summary["p99"] == pytest.approx(100.0, rel=0.01)
    assert summary["max"] == pytest.approx(100.0, rel=0.01)


def test_summary_has_the_design_keys_and_3_significant_figures() -> None:
    h = hdr.decode(filled([i / 10 for i in range(1, 10001)]))  # 0.1 .. 1000 ms
    summary = hdr.summary_ms(h)
    assert set(summary) == {"p50", "p90", "p99", "p999", "max"}
    assert summary["p50"] == pytest.approx(500.0, rel=0.002)
    assert summary["p999"] == pytest.approx(999.0, rel=0.002)


def test_empty_histogram_summarises_to_zeros() -> None:
    assert hdr.summary_ms(hdr.new_histogram()) == {
        "p50": 0.0,
        "p90": 0.0,
        "p99": 0.0,
        "p999": 0.0,
        "max": 0.0,
    }
    assert hdr.percentile_curve_ms(hdr.new_histogram()) == []


def test_values_out_of_range_are_clamped_not_dropped() -> None:
    h = hdr.new_histogram()
    hdr.record_ms(h, -5.0)
    hdr.record_ms(h, 10**9)  # 11 days
    assert h.get_total_count() == 2
    assert hdr.summary_ms(h)["max"] == pytest.approx(hdr.HIGHEST_US / 1000.0, rel=0.001)


def test_decode_of_garbage_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        hdr.decode("not a histogram")


def test_percentile_curve_is_monotone_and_ends_at_max() -> None:
    h = hdr.decode(filled([float(i) for i in range(1, 1001)]))
    curve = hdr.percentile_curve_ms(h, points=30)
    percentiles = [p for p, _ in curve]
    values = [v for _, v in curve]
    assert percentiles == sorted(percentiles)
    assert values == sorted(values)
    assert values[-1] == pytest.approx(1000.0, rel=0.001)
    assert percentiles[-1] <= 99.9 + 1e-9  # 1,000 values cannot resolve past 99.9 %
