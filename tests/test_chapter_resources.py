"""benchmarks/chapter_resources.py: its table, the whole book's sum and its exit status, with the
chapters' executions replaced by fixed measurements (executing them is the benchmark's job)."""

import importlib.util

from bertbook.maint import ROOT
from bertbook.resources import BOOK_TIME_TARGET_S, MEMORY_BUDGET, TIME_BUDGET_S


def _benchmark(monkeypatch, seconds_of):
    spec = importlib.util.spec_from_file_location(
        "chapter_resources", ROOT / "benchmarks" / "chapter_resources.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    peak = int(0.5 * MEMORY_BUDGET)
    monkeypatch.setattr(module, "run", lambda path: (seconds_of(path.stem), peak, peak))
    return module


def test_every_chapter_ends_with_the_books_sum_against_its_target(monkeypatch, capsys):
    bench = _benchmark(monkeypatch, lambda name: 0.5 * TIME_BUDGET_S[name])
    assert bench.main([]) == 0
    last = capsys.readouterr().out.splitlines()[-1].split()
    total = 0.5 * sum(TIME_BUDGET_S.values())
    assert last[:4] == ["every", "chapter", f"{total:.1f}", str(BOOK_TIME_TARGET_S)]
    assert ("above target" in " ".join(last)) == (total > BOOK_TIME_TARGET_S)


def test_some_chapters_print_no_sum_and_a_chapter_over_its_budget_fails(monkeypatch, capsys):
    bench = _benchmark(monkeypatch, lambda name: 1.1 * TIME_BUDGET_S[name])
    assert bench.main(["00_intro", "03_tokenizers"]) == 1
    out = capsys.readouterr().out
    assert "every chapter" not in out
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["00_intro", "03_tokenizers"]
    assert all(line.endswith(" over") for line in out.splitlines()[2:])
