"""Shared test setup.

* nbval's executions log their glued numbers to ``_build/glue-nbval.jsonl`` (see
  ``bertbook.glue``), and the tests of the built book run last, so that
  ``test_determinism.py`` can compare the nbval execution with the book build's.
* ``built_book`` gives the path of ``_build/html``; tests that need it skip when the book has
  not been built, unless ``BERTBOOK_REQUIRE_BOOK=1`` (set by CI), where they fail instead.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
GLUE_LOG = BUILD / "glue-nbval.jsonl"
LAST = ("test_determinism.py", "test_book_html.py")


def pytest_configure(config):
    BUILD.mkdir(exist_ok=True)
    GLUE_LOG.write_text("")
    os.environ["BERTBOOK_GLUE_LOG"] = str(GLUE_LOG)  # inherited by nbval's kernels


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: Path(str(item.fspath)).name in LAST)


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
