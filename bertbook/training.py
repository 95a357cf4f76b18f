"""The course's plumbing, apart from its models: timing (and, as chapters move them here,
training loops, batching, caching and statistics).

One timer serves every chapter: ``median_time`` reports the median of repeated calls, and
``side_by_side`` times several functions interleaved in one run, so that a load that comes and
goes on the machine hits every contender alike. Prose states timings as ratios of such runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """The median wall-clock seconds of ``repeats`` calls of ``fn()``, after ``warmup`` calls."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def side_by_side(fns: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1):
    """Median seconds of each function in ``fns``, timed in interleaved rounds.

    Round r calls every function once (in turn), so a slow spell of the machine costs every
    function about equally; returns ``{name: median seconds}``."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            begin = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - begin)
    return {name: statistics.median(ts) for name, ts in times.items()}
