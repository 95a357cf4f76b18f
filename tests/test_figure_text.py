"""Every text of every figure the chapters display is at least 8 pt at the book's content
width (``bertbook.figure_text``): checked on what nbval's kernels recorded in this session (the
notebooks run once, for nbval), and the recorder shown to catch a planted small text."""

import json
import os

import pytest
from conftest import FIGURE_LOG, NOTEBOOKS_RUN

from bertbook import figure_text


def test_every_displayed_figure_has_texts_of_at_least_8_pt():
    if not NOTEBOOKS_RUN:
        pytest.skip("nbval ran no notebook in this session")
    records = [json.loads(line) for line in FIGURE_LOG.read_text().splitlines()]
    assert records, f"no figure recorded while nbval ran {sorted(NOTEBOOKS_RUN)}"
    lines = figure_text.report(records)
    assert not lines, f"{len(lines)} figures with texts below 8 pt on the page:\n" + "\n".join(
        lines
    )


def test_the_size_on_the_page():
    # Wider than the column: scaled to 720 px, so 8 pt needs 8 * width / 7.5.
    assert figure_text.shown_pt(12, 11.25, 1125) == pytest.approx(8.0)
    # Narrower: shown at its natural size (a 100-dpi image: 1 pt is 100/96 of a CSS pt).
    assert figure_text.shown_pt(8, 5, 500) == pytest.approx(8 * 100 / 96)
    record = {"width_in": 10.0, "natural_px": 1000.0, "texts": [["big", 11.0], ["small", 10.0]]}
    assert [t for t, *_ in figure_text.too_small(record)] == ["small"]


def test_measure_finds_drawn_texts_only():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_title("title", fontsize=12)
    ax.text(0.5, 0.5, "hidden", visible=False)
    ax.text(0.5, 0.5, "")
    record = figure_text.measure(fig)
    plt.close(fig)
    texts = dict(record["texts"])
    assert texts["title"] == 12 and "hidden" not in texts and "" not in texts
    assert "0.0" in texts and 3.5 < record["width_in"] < 4.2  # tick labels; the tight crop


def _run_with_recorder(tmp_path, sources):
    """Execute code cells in a kernel set up as nbval's are (the IPython start-up file);
    returns the executed notebook and the records."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-figure-text.py").write_text(figure_text.startup_file())
    log, cell = tmp_path / "log.jsonl", tmp_path / "cell.json"
    cell.write_text(json.dumps({"notebook": "planted.ipynb", "cell": "Cell 0"}))
    env = {
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "BERTBOOK_FIGURE_LOG": str(log),
        "BERTBOOK_FIGURE_CELL": str(cell),
    }
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.update({k: v})
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return nb, records


def test_a_planted_small_text_in_a_kernel_is_reported(tmp_path):
    """The planted fault: a figure with a 6-pt label, displayed in a kernel with the recorder
    installed as nbval's kernels have it; the start-up file leaves no name behind."""
    nb, records = _run_with_recorder(
        tmp_path,
        [
            "print(sorted(dir()))",
            "import matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots(figsize=(10, 3))\n"
            "ax.set_xlabel('six points', fontsize=6)\n"
            "ax.set_title('large enough', fontsize=14)\n"
            "plt.show()",
        ],
    )
    assert "figure_text" not in nb.cells[0].outputs[0]["text"]
    (record,) = records
    assert record["cell"] == {"notebook": "planted.ipynb", "cell": "Cell 0"}
    lines = figure_text.report(records)
    (line,) = lines
    assert line.startswith("planted.ipynb Cell 0: a figure") and "1 texts below 8 pt" in line
    assert "'six points'" in line and "large enough" not in line
