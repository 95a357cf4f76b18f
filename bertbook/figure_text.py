"""Figures readable at the page's width: every text a displayed figure draws is at least 8 pt
when the book shows the figure in its content column.

The book (Jupyter Book 1, sphinx-book-theme 1.3) shows a notebook's PNG figure at its natural
size (one image pixel per CSS pixel) up to the column's width, and scales a wider one down to
it. Measured in Chromium on the theme as built: a captioned figure is shown at most 774 px wide
(viewports of 1408 px and wider, where the page stops growing at 88rem), 741 px in a 1366-px
window, 671 px in a 1280-px one (the right-hand contents column takes its share). The rule uses
``CONTENT_WIDTH_PX`` = 720 px (7.5 in at 96 px per inch), inside that range. A text of
``fontsize`` pt in a figure ``width_in`` inches wide (as saved, after the inline backend's tight
crop), shown ``shown_px`` CSS px wide, appears at ``fontsize * shown_px / (96 * width_in)`` pt;
for a figure wider than the column that is ``fontsize * 7.5 / width_in``.

Two ways to measure:

* ``measure(fig)`` renders a figure as the notebook's inline backend does (PNG, tight box) and
  returns each text it draws with its size (``tests/test_diagrams.py``);
* ``install()``, run in a kernel by an IPython start-up file that ``tests/conftest.py`` writes
  for the nbval run, records every figure the kernel renders for display into the file named by
  ``BERTBOOK_FIGURE_LOG``, tagged with the notebook cell that nbval is running (read from the
  file ``BERTBOOK_FIGURE_CELL``); ``tests/test_figure_text.py`` checks the log when every
  notebook has run. Nothing is recorded in a grading kernel.

``python -m bertbook.figure_text NOTEBOOK ...`` executes notebooks with the recorder and lists
every text smaller than 8 pt (for authors; needs nbclient). Standard library only until a figure
is measured, so that a start-up file costs a kernel nothing.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
from contextlib import contextmanager

CONTENT_WIDTH_PX = 720  # the book's content column, CSS px (7.5 in at 96 px/in)
CSS_PX_PER_IN = 96
MIN_PT = 8.0


def shown_pt(fontsize: float, width_in: float, natural_px: float) -> float:
    """The size in pt at which the book shows a ``fontsize``-pt text of a figure saved
    ``width_in`` inches wide whose image is ``natural_px`` CSS px wide."""
    shown_px = min(CONTENT_WIDTH_PX, natural_px)
    return fontsize * shown_px / (CSS_PX_PER_IN * width_in)


def too_small(record: dict) -> list[tuple[str, float, float]]:
    """(text, fontsize, shown pt) for every text of a recorded figure below ``MIN_PT``."""
    found = []
    for text, size in record["texts"]:
        pt = shown_pt(size, record["width_in"], record["natural_px"])
        if pt < MIN_PT - 1e-9:
            found.append((text, size, round(pt, 2)))
    return found


@contextmanager
def drawn_texts():
    """Collects (text, fontsize) of every non-empty visible text drawn inside the block."""
    from matplotlib.text import Text

    seen: dict[int, tuple[str, float]] = {}
    original = Text.draw

    def draw(self, renderer, *args, **kwargs):
        if self.get_visible() and self.get_text().strip():
            seen[id(self)] = (self.get_text(), float(self.get_fontsize()))
        return original(self, renderer, *args, **kwargs)

    Text.draw = draw
    try:
        yield seen
    finally:
        Text.draw = original


def _png_width(data: bytes) -> int:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">I", data[16:20])[0]


def _record(fig, texts: dict, png: bytes, print_dpi: float) -> dict:
    width_in = _png_width(png) / print_dpi
    # The image's CSS width: a retina PNG (twice the dpi) is shown at half its pixels.
    return {
        "width_in": round(width_in, 4),
        "natural_px": round(width_in * fig.dpi, 1),
        "texts": sorted(set(texts.values()), key=lambda t: (t[1], t[0])),
    }


def measure(fig, bbox_inches="tight") -> dict:
    """Render ``fig`` as the inline backend displays it and record its texts' sizes."""
    buf = io.BytesIO()
    with drawn_texts() as texts:
        fig.canvas.print_figure(buf, format="png", dpi=fig.dpi, bbox_inches=bbox_inches)
    return _record(fig, texts, buf.getvalue(), fig.dpi)


def _patch_canvas(log: str, cell_file: str | None) -> None:
    from matplotlib.backend_bases import FigureCanvasBase

    original = FigureCanvasBase.print_figure
    if getattr(original, "_bertbook_figure_text", False):
        return

    def print_figure(self, filename, *args, **kwargs):
        watched = cell_file is None or os.path.exists(cell_file)  # no cell running: not ours
        if not (watched and isinstance(filename, io.BytesIO) and kwargs.get("format") == "png"):
            return original(self, filename, *args, **kwargs)  # a file, not a display
        with drawn_texts() as texts:
            result = original(self, filename, *args, **kwargs)
        try:
            record = _record(self.figure, texts, filename.getvalue(), kwargs.get("dpi") or 100)
            if cell_file and os.path.exists(cell_file):
                with open(cell_file) as f:
                    record["cell"] = json.load(f)
            with open(log, "a") as f:
                f.write(json.dumps(record) + "\n")
        except Exception as error:  # noqa: BLE001 - a recorder must never break a display
            print(f"bertbook.figure_text: not recorded: {error!r}", file=sys.stderr)
        return result

    print_figure._bertbook_figure_text = True
    FigureCanvasBase.print_figure = print_figure


class _PatchOnImport:
    """A meta-path finder that patches matplotlib's canvas once it is imported (a kernel that
    never draws never imports matplotlib for this)."""

    def __init__(self, log, cell_file):
        self.args = (log, cell_file)

    def find_spec(self, name, path=None, target=None):
        if name != "matplotlib.backend_bases":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        exec_module, args = spec.loader.exec_module, self.args

        def patched(module):
            exec_module(module)
            sys.modules[name] = module
            _patch_canvas(*args)

        spec.loader.exec_module = patched
        return spec


def install() -> bool:
    """Record every figure rendered for display into ``$BERTBOOK_FIGURE_LOG`` (a JSON line per
    figure); does nothing when that is unset or in a grading kernel. Returns whether it did."""
    log = os.environ.get("BERTBOOK_FIGURE_LOG")
    if not log or os.environ.get("BERTBOOK_GRADING"):
        return False
    cell_file = os.environ.get("BERTBOOK_FIGURE_CELL")
    if "matplotlib.backend_bases" in sys.modules:
        _patch_canvas(log, cell_file)
    else:
        sys.meta_path.insert(0, _PatchOnImport(log, cell_file))
    return True


def startup_file() -> str:
    """An IPython start-up file that installs the recorder from this file (whatever version of
    the package the kernel imports), leaving nothing in the notebook's namespace."""
    return (
        "def _bertbook_figure_text():\n"
        "    import importlib.util, sys\n"
        f"    spec = importlib.util.spec_from_file_location('_bertbook_figure_text', {__file__!r})\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    sys.modules[spec.name] = module\n"
        "    spec.loader.exec_module(module)\n"
        "    module.install()\n"
        "_bertbook_figure_text()\n"
        "del _bertbook_figure_text\n"
    )


def report(records: list[dict]) -> list[str]:
    """One line per figure with texts below ``MIN_PT`` on the page: where, which, and what
    would fix it (larger texts, or a narrower figure)."""
    lines = []
    for record in records:
        small = too_small(record)
        if not small:
            continue
        cell = record.get("cell", {})
        width = record["width_in"]
        smallest = min(size for _, size, _ in small)
        texts = ", ".join(repr(t) for t, *_ in small[:6]) + (" ..." if len(small) > 6 else "")
        lines.append(
            f"{cell.get('notebook', '?')} {cell.get('cell', '?')}: a figure {width:.2f} in wide"
            f" shows {len(small)} texts below {MIN_PT:g} pt (smallest {smallest:g} pt ->"
            f" {min(pt for *_, pt in small):.1f} pt on the page): {texts}; at this width texts"
            f" need {MIN_PT * width / (CONTENT_WIDTH_PX / CSS_PX_PER_IN):.1f} pt"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    parser = argparse.ArgumentParser(prog="python -m bertbook.figure_text", description=__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        startup = Path(tmp, "profile_default", "startup")
        startup.mkdir(parents=True)
        (startup / "00-bertbook-figure-text.py").write_text(startup_file())
        os.environ.update(IPYTHONDIR=tmp, BERTBOOK_FIGURE_LOG=str(Path(tmp, "log.jsonl")))
        cell_file = Path(tmp, "cell.json")
        os.environ["BERTBOOK_FIGURE_CELL"] = str(cell_file)
        for path in args.notebooks:
            nb = nbformat.read(str(path), as_version=4)
            client = NotebookClient(nb, timeout=900, resources={"metadata": {"path": path.parent}})

            def on_cell_start(cell, cell_index, path=path):
                cell_file.write_text(json.dumps({"notebook": str(path), "cell": cell_index}))

            client.on_cell_start = on_cell_start
            client.execute()
        log = Path(tmp, "log.jsonl")
        records = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
        lines = report(records)
    print("\n".join(lines) if lines else f"{len(records)} figures: every text is at least 8 pt")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
