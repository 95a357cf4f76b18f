"""Generated files are in sync with their sources, and notebooks are committed clean."""

import json
import subprocess
import sys

import nbformat

from bertbook import maint
from bertbook.maint import ROOT, SETUP_TAG, exercise_from_solution


def test_generated_files_are_in_sync():
    done = subprocess.run(
        [sys.executable, "-m", "bertbook.maint", "check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_solution_has_its_exercise_and_questions():
    from bertbook.questions import REGISTRY

    solutions = maint.notebooks("solutions")
    assert solutions
    for path in solutions:
        nb = nbformat.read(str(path), as_version=4)
        assert nb.metadata["bertbook"]["exercise"] == path.stem in REGISTRY
        assert (ROOT / "exercises" / path.name).exists()
        exercise = (ROOT / "exercises" / path.name).read_text()
        assert "### BEGIN SOLUTION" not in exercise and maint.STUB.split("(")[0] in exercise


def test_notebooks_are_committed_without_outputs():
    for folder in ("book", "solutions", "exercises"):
        for path in maint.notebooks(folder):
            nb = json.loads(path.read_text())
            for cell in nb["cells"]:
                if cell["cell_type"] == "code":
                    assert cell["outputs"] == [] and cell["execution_count"] is None, path


def test_every_notebook_starts_with_the_setup_cell():
    for folder in ("book", "solutions", "exercises"):
        for path in maint.notebooks(folder):
            first = nbformat.read(str(path), as_version=4).cells[0]
            assert (
                SETUP_TAG in first.metadata["tags"] and first.source == maint.setup_cell_source()
            ), path


def test_exercise_generation_replaces_solutions_keeping_indentation():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n\ny = 2"
            ),
            nbformat.v4.new_markdown_cell(
                "Intro.\n<!-- BEGIN SOLUTION -->\nThe answer is 3.\n<!-- END SOLUTION -->\nEnd."
            ),
        ]
    )
    out = exercise_from_solution(nb)
    assert out.cells[0].source == f"def f(x):\n    {maint.STUB}\n\ny = 2"
    assert out.cells[1].source == "Intro.\nEnd."
    assert nb.cells[0].source.count("return x + 1") == 1  # the source notebook is untouched


def test_saved_module_collects_save_cells():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("#@save\nimport math"),
            nbformat.v4.new_code_cell("print('not saved')"),
            nbformat.v4.new_code_cell("#@save\ndef f():\n    return math.pi"),
        ],
        metadata={"bertbook": {"module": "demo", "module_doc": "Demo."}},
    )
    text = maint.saved_module(nb, "book/99_demo.ipynb")
    assert text.startswith('"""Demo.') and "import math" in text and "def f()" in text
    assert "not saved" not in text
    namespace = {}
    exec(compile(text, "demo", "exec"), namespace)
    assert abs(namespace["f"]() - 3.14159) < 1e-5
