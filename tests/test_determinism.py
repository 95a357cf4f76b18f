"""Two executions of every chapter glue the same numbers (timings aside).

Execution 1 is the book build (``_build/jupyter_execute/**.glue.json``); execution 2 is nbval in
this pytest session, which logs every ``bertbook.glue.record`` call to ``_build/glue-nbval.jsonl``.
"""

import json

from conftest import GLUE_LOG, ROOT, need_built_book


def _book_glue():
    values = {}
    for path in (ROOT / "_build" / "jupyter_execute").rglob("*.glue.json"):
        for name, output in json.loads(path.read_text()).items():
            values[name] = output["data"]["text/plain"]
    return values


def _nbval_glue():
    values, timings = {}, set()
    for line in GLUE_LOG.read_text().splitlines():
        entry = json.loads(line)
        values[entry["name"]] = entry["value"]
        if entry["timing"]:
            timings.add(entry["name"])
    return values, timings


def test_glued_numbers_equal_across_executions():
    need_built_book()
    book = _book_glue()
    nbval, timings = _nbval_glue()
    assert nbval, "nbval logged no glued numbers: did it run the chapters in this session?"
    assert set(book) == set(nbval), f"glued in only one execution: {set(book) ^ set(nbval)}"
    differ = {k: (book[k], nbval[k]) for k in book if k not in timings and book[k] != nbval[k]}
    assert not differ, f"glued numbers differ between the two executions: {differ}"
