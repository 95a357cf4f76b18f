"""No code a reader cannot see (``bertbook.visible_names``): every chapter and solution passes,
and the analysis catches what it should, and only that, on small notebooks."""

import json

import pytest

from bertbook import visible_names
from bertbook.maint import ROOT


@pytest.mark.parametrize(
    "path", visible_names.default_notebooks(ROOT), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_every_name_a_visible_cell_uses_is_visible(path):
    found = visible_names.problems(path)
    assert not found, "\n".join(found)


def notebook(tmp_path, *cells):
    """A notebook of code cells; a cell given as (source, tag) carries that tag."""
    cells = [(c, None) if isinstance(c, str) else c for c in cells]
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"tags": [tag]} if tag else {},
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
            for source, tag in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 4,
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    return visible_names.problems(path)


@pytest.mark.parametrize("tag", sorted(visible_names.HIDDEN_TAGS))
def test_a_function_defined_in_a_hidden_cell_is_reported(tmp_path, tag):
    (found,) = notebook(tmp_path, ("def encode(t):\n    return t", tag), "encode('a')")
    assert "`encode` is defined only in a hidden cell (cell 0, " + tag in found


def test_a_name_used_inside_a_function_resolves_to_any_visible_cell(tmp_path):
    assert notebook(tmp_path, "def f():\n    return later", "later = 1", "f()") == []
    (found,) = notebook(tmp_path, "def f():\n    return later", ("later = 1", "remove-input"))
    assert "`later` (used in a function) is defined only in a hidden cell" in found


def test_top_level_order_within_and_across_cells(tmp_path):
    assert notebook(tmp_path, "x = 1\ny = x + 1", "print(y)") == []
    (found,) = notebook(tmp_path, "y = x + 1\nx = 1")
    assert "`x` is not defined before use" in found
    (found,) = notebook(tmp_path, ("m = 1", "remove-cell"), "m = m + 1")
    assert "`m` is defined only in a hidden cell" in found
    (found,) = notebook(tmp_path, ("total = 0", "hide-input"), "total += 1")
    assert "`total` is defined only in a hidden cell" in found


def test_a_hidden_cell_that_rebinds_a_visible_name_is_reported(tmp_path):
    (found,) = notebook(tmp_path, "x = 1", ("x = 2", "remove-input"), "print(x)")
    assert "`x` is rebound by a hidden cell (cell 1, remove-input)" in found
    # Drawing code may use the page's names, and reuse a name the page binds again itself.
    assert notebook(tmp_path, "x = 1", ("print(x)\ni = 0", "remove-input"), "i = 3\nprint(i)") == []


def test_scopes(tmp_path):
    # Comprehension variables do not leak; the walrus does (PEP 572).
    (found,) = notebook(tmp_path, "s = [w for w in 'ab']", "print(w)")
    assert "`w` is not defined" in found
    assert notebook(tmp_path, "s = [(n := len(w)) for w in 'ab']", "print(n)") == []
    # Parameters, locals, closures, nonlocal, global, class bodies.
    cells = [
        "def outer(a, *args, b=1, **kw):\n    c = a\n    def inner():\n        nonlocal c\n"
        "        return a + b + c + len(args) + len(kw)\n    return inner()",
        "def setter():\n    global g\n    g = 1",
        "setter()\nprint(g, outer(1))",
        "class K:\n    size = 3\n    twice = size * 2\n    def m(self):\n        return self.size",
        "print(K().m(), lambda q: q + 1)",
    ]
    assert notebook(tmp_path, *cells) == []
    # A class body does not enclose its methods: `size` there is a global, and missing.
    (found,) = notebook(tmp_path, "class K:\n    size = 3\n    def m(self):\n        return size")
    assert "`size` (used in a function) is defined nowhere" in found


def test_attributes_builtins_imports_and_magics(tmp_path):
    cells = [
        "import os.path\nfrom math import pi as PI",
        "print(os.path.sep, PI, len([]), display, obj_missing.attr if False else 0)",
    ]
    (found,) = notebook(tmp_path, *cells)  # the attribute is not a name; the object is
    assert "`obj_missing`" in found and "attr" not in found.split("`obj_missing`")[1]
    assert notebook(tmp_path, "from math import *", "print(floor(pi))") == []
    (found,) = notebook(tmp_path, "from math import *", "print(not_in_math)")
    assert "`not_in_math`" in found
    assert notebook(tmp_path, "%time x = 1\n!ls\n%matplotlib inline", "print(x)") == []


def test_a_chapter_with_one_definition_hidden_fails(tmp_path):
    """The planted fault: hide the cell of a chapter that defines a name later cells use."""
    path = ROOT / "book" / "03_tokenizers.ipynb"
    nb = json.loads(path.read_text())
    assert visible_names.problems(path) == []
    cells = visible_names.read_cells(path)
    name, index = next(  # the first name a visible cell binds and a later cell loads
        (name, cell.index)
        for i, cell in enumerate(cells)
        if not cell.hidden
        for name in sorted(cell.binds)
        if any(e.kind == "load" and e.name == name for c in cells[i + 1 :] for e in c.events)
    )
    nb["cells"][index].setdefault("metadata", {})["tags"] = ["remove-input"]
    planted = tmp_path / path.name
    planted.write_text(json.dumps(nb))
    found = visible_names.problems(planted)
    assert any(f"`{name}`" in line and "hidden cell" in line for line in found), found
