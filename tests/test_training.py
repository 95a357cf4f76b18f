"""The one timer: medians of repeats, interleaved side-by-side rounds."""

import pytest

from bertbook import training


def test_median_time_is_the_median_of_the_repeats(monkeypatch):
    clock = iter([0.0, 1.0, 1.0, 4.0, 4.0, 6.0])  # three calls: 1 s, 3 s, 2 s
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(clock))
    assert training.median_time(lambda: None, repeats=3, warmup=0) == 2.0


def test_side_by_side_interleaves_and_takes_medians(monkeypatch):
    calls = []
    ticks = iter(range(100))
    monkeypatch.setattr(training.time, "perf_counter", lambda: float(next(ticks)))
    result = training.side_by_side(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=2, warmup=1
    )
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert result == {"a": 1.0, "b": 1.0}


def test_repeats_must_be_positive():
    with pytest.raises(ValueError):
        training.median_time(lambda: None, repeats=0)
