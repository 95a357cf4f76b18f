"""Serve MathJax from the built book itself, so formulas render offline.

The files come from the installed pip package ``jupyter-server-mathjax`` (MathJax 2.7) and are
copied into ``<html>/_static/mathjax`` (Sphinx resolves ``mathjax_path`` there) when the
build finishes; nothing third-party is committed."""

import shutil
from pathlib import Path


def _copy(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    import jupyter_server_mathjax

    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    dst = Path(app.outdir) / "_static" / "mathjax"
    if not (dst / "MathJax.js").exists():
        shutil.copytree(src, dst, dirs_exist_ok=True)


def setup(app):
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
