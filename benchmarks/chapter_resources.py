"""What each chapter costs: ``python benchmarks/chapter_resources.py [CHAPTER ...]`` (``make
resources``).

Executes each chapter (default: every one in ``bertbook.resources.TIME_BUDGET_S``, in order) in a
fresh kernel, as the book build does, and prints per chapter: the wall time of the whole
notebook, the peak memory of its kernel with every process it starts (sampled every 0.5 s as
a sum of proportional set sizes, and the kernel's own high-water mark; the plain sum of resident
sizes beside it), and the share of each budget used; after every chapter, their sum against the
whole book's target. Budgets are for
an idle 2-core machine: on a busy one the times are inflated, the memory is not. Exits 1 when a
chapter passes its memory budget or its time budget.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from bertbook.maint import ROOT
from bertbook.resources import (
    BOOK_TIME_TARGET_S,
    MEMORY_BUDGET,
    TIME_BUDGET_S,
    TIME_TARGET,
    PeakMemory,
)


def run(path: Path) -> tuple[float, int, int]:
    """(seconds, peak bytes, peak bytes as a plain sum of resident sizes) of one execution of
    the notebook at ``path`` (see ``PeakMemory``)."""
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    sampler = None

    def on_start(**_):
        nonlocal sampler
        sampler = PeakMemory(client.km.provisioner.pid).start()

    client.on_notebook_start = on_start
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        seconds = time.perf_counter() - start
        peak = sampler.stop() if sampler else 0
    return seconds, peak, sampler.peak_rss_sum if sampler else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="e.g. 04_bert (default: every chapter)")
    args = parser.parse_args(argv)
    chapters = args.chapters or list(TIME_BUDGET_S)
    print(f"{os.cpu_count()} CPUs; budgets: time per chapter, memory {MEMORY_BUDGET / 1e9:.1f} GB")
    print(
        f"{'chapter':22} {'time s':>7} {'budget':>6} {'share':>6} {'peak GB':>8} {'share':>6}"
        f" {'RSS sum GB':>10}"
    )
    over, total = [], 0.0
    for name in chapters:
        seconds, peak, rss_sum = run(ROOT / "book" / f"{name}.ipynb")
        total += seconds
        budget = TIME_BUDGET_S[name]
        time_share, memory_share = seconds / budget, peak / MEMORY_BUDGET
        flag = " over" if time_share > 1 or memory_share > 1 else (
            " above target" if time_share > TIME_TARGET else ""
        )  # fmt: skip
        print(
            f"{name:22} {seconds:7.1f} {budget:6d} {time_share:6.0%} {peak / 1e9:8.2f}"
            f" {memory_share:6.0%} {rss_sum / 1e9:10.2f}{flag}",
            flush=True,
        )
        if time_share > 1 or memory_share > 1:
            over.append(name)
    if set(chapters) == set(TIME_BUDGET_S):  # the whole book: against its own target
        flag = " above target" if total > BOOK_TIME_TARGET_S else ""
        print(f"{'every chapter':22} {total:7.1f} {BOOK_TIME_TARGET_S:6d} (target){flag}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
