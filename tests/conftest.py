"""Shared test setup.

* nbval's executions log their glued numbers to ``_build/glue-nbval.jsonl`` (see
  ``bertbook.glue``), and the tests of the built book run last, so that
  ``test_determinism.py`` can compare the nbval execution with the book build's.
* The same kernels record the size of every text of every figure they display (an IPython
  start-up file installs ``bertbook.figure_text``'s recorder; each record names the notebook
  cell nbval was running) into ``_build/figure-text.jsonl``; ``test_figure_text.py`` runs last
  and checks that every text is at least 8 pt at the book's content width.
* ``built_book`` gives the path of ``_build/html``; tests that need it skip when the book has
  not been built, unless ``BERTBOOK_REQUIRE_BOOK=1`` (set by CI), where they fail instead.
* The notebooks run first, then the package's tests, then the checks above. When the notebooks
  are done, ``notebooks-done`` appears beside the logs: CI starts its other test sessions then,
  beside the package's tests (which wait on kernels half of the time), never beside a chapter,
  whose two OpenMP threads spin between operations and stall when another process takes a core.
"""

import json
import os
from pathlib import Path

import pytest

from bertbook import figure_text

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
# This session's own files: BERTBOOK_TEST_LOGS gives a session its own folder, so that two
# sessions in one checkout (CI runs the newest and the oldest version sets side by side) do not
# empty each other's logs.
LOGS = Path(os.environ.get("BERTBOOK_TEST_LOGS") or BUILD).resolve()
GLUE_LOG = LOGS / "glue-nbval.jsonl"
FIGURE_LOG = LOGS / "figure-text.jsonl"
FIGURE_CELL = LOGS / "figure-text-cell.json"  # the notebook cell nbval is running
PEAKS_LOG = LOGS / "kernel-peaks.json"  # NOTEBOOK_PEAKS, for a reader of the run (CI prints it)
NOTEBOOKS_DONE = LOGS / "notebooks-done"  # written when the first test after them starts
IPYTHONDIR = LOGS / "ipython"  # nbval's kernels' IPython profile: the start-up file only
LAST = (
    "test_determinism.py",
    "test_figure_text.py",
    "test_chapter_memory.py",
    "test_book_html.py",
    "test_pdf.py",  # .ci/run prints the PDF beside the first notebooks
)
NOTEBOOKS_RUN: set[str] = set()  # the notebooks nbval ran in this session
NOTEBOOK_PEAKS: dict[str, int] = {}  # peak resident bytes of each one's kernel and its processes


def pytest_configure(config):
    LOGS.mkdir(parents=True, exist_ok=True)
    NOTEBOOKS_DONE.unlink(missing_ok=True)
    GLUE_LOG.write_text("")
    os.environ["BERTBOOK_GLUE_LOG"] = str(GLUE_LOG)  # inherited by nbval's kernels
    FIGURE_LOG.write_text("")
    FIGURE_CELL.unlink(missing_ok=True)
    startup = IPYTHONDIR / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-bertbook-figure-text.py").write_text(figure_text.startup_file())
    os.environ.update(
        IPYTHONDIR=str(IPYTHONDIR),
        BERTBOOK_FIGURE_LOG=str(FIGURE_LOG),
        BERTBOOK_FIGURE_CELL=str(FIGURE_CELL),
    )
    # A hook of this file sees only the items under tests/: nbval's are under book/ and
    # solutions/, so the hooks that watch them are a plugin of the whole session.
    config.pluginmanager.register(NbvalWatcher(), "bertbook-nbval-watcher")


class NbvalWatcher:
    """Tells each nbval kernel which cell runs (for the figure recorder) and samples the
    resident memory of each notebook's kernel and its processes (``NOTEBOOK_PEAKS``)."""

    def __init__(self):
        self.sampler = None

    @pytest.hookimpl(trylast=True)  # after the runner's setup, which starts the kernel
    def pytest_runtest_setup(self, item):
        if not is_notebook(item):
            if not NOTEBOOKS_DONE.exists():
                os.environ.pop("BERTBOOK_GLUE_LOG", None)  # the kernels of later tests log nothing
                NOTEBOOKS_DONE.write_text("")
            return
        notebook = Path(str(item.fspath)).relative_to(ROOT).as_posix()
        if notebook not in NOTEBOOKS_RUN:
            NOTEBOOKS_RUN.add(notebook)
            self.sampler = self._sample(item)
        tags = item.cell.get("metadata", {}).get("tags", [])
        FIGURE_CELL.write_text(json.dumps({"notebook": notebook, "cell": item.name, "tags": tags}))

    @staticmethod
    def _sample(item):
        try:
            from bertbook.resources import PeakMemory

            pid = item.parent.kernel.km.provisioner.pid
            return PeakMemory(pid).start()
        except Exception as error:  # noqa: BLE001 - no psutil, another nbval: said, not fatal
            print(f"not sampling the memory of {item.fspath}: {error!r}")
            return None

    @pytest.hookimpl(tryfirst=True)  # before the last cell's teardown stops the kernel
    def pytest_runtest_teardown(self, item, nextitem):
        if not is_notebook(item):
            return
        if nextitem is None or nextitem.parent is not item.parent:
            FIGURE_CELL.unlink(missing_ok=True)  # kernels of other tests record nothing
            if self.sampler is not None:
                notebook = Path(str(item.fspath)).relative_to(ROOT).as_posix()
                NOTEBOOK_PEAKS[notebook] = self.sampler.stop()
                self.sampler = None
                PEAKS_LOG.write_text(json.dumps(NOTEBOOK_PEAKS, indent=1) + "\n")


def is_notebook(item) -> bool:
    return type(item).__name__ == "IPyNbCell"


def pytest_collection_modifyitems(session, config, items):
    # The notebooks, then the package's tests, then LAST (a stable sort: each keeps its order).
    items.sort(
        key=lambda item: 0 if is_notebook(item) else 1 + (Path(str(item.fspath)).name in LAST)
    )


def exercise_points(exercise: str) -> dict[str, float]:
    """Each question's points in an exercise, from the question modules (tests that grade a
    variant of a solution use these rather than typed totals, which a new question changes)."""
    from bertbook.questions import REGISTRY

    return {q.id: q.points for q in REGISTRY[exercise]()}


INTRO_POINTS = exercise_points("00_intro")
INTRO_FULL = sum(INTRO_POINTS.values())  # the warm-up solution's score
# What the grader tests' variants of the warm-up leave as the solution has it: every question
# after the three they break (softmax, temperature, cosine).
INTRO_BEYOND = {q: p for q, p in INTRO_POINTS.items() if q not in ("q1", "q2", "q3")}
INTRO_BEYOND_SUM = sum(INTRO_BEYOND.values())


def need_built_book() -> Path:
    html = BUILD / "html"
    if not (html / "index.html").exists():
        message = "the book is not built: run `make book` first"
        if os.environ.get("BERTBOOK_REQUIRE_BOOK") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return html


@pytest.fixture(scope="session")
def built_book() -> Path:
    return need_built_book()


def module_from_source(path: Path, source: str, module_name: str):
    """``source`` (dedented) written to ``path`` and imported as ``module_name``, as an edited
    file of that module would be: inspect then finds its classes' source through it."""
    import importlib.util
    import sys
    import textwrap

    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
