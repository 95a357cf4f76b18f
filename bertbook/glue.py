"""Publish a chapter's headline numbers: glued for the book's prose, printed for everyone else.

``record("ch1_acc_attention", acc)`` glues a plain float under that name (myst-nb ``glue``;
the prose pastes it with ``{glue:text}``), prints it readably (Colab does not render glue
roles), and, when ``BERTBOOK_GLUE_LOG`` names a file, appends it there so that two executions
of the book can be compared (``tests/test_determinism.py``). Timings are marked as such: they
are allowed to differ between runs.
"""

from __future__ import annotations

import json
import os


def record(name: str, value, fmt: str = "{:.3f}", timing: bool = False) -> None:
    """Glue, print and log one headline number (returns nothing, so a cell shows it once)."""
    value = float(value)  # numpy and torch scalars break glue's format specs
    try:
        from myst_nb import glue
    except ImportError:  # Colab and plain Jupyter: printing is enough
        glue = None
    if glue is not None:
        glue(name, value, display=False)
    log = os.environ.get("BERTBOOK_GLUE_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"name": name, "value": repr(value), "timing": timing}) + "\n")
    print(f"{name} = {fmt.format(value)}")
