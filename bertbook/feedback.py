"""Feedback files to hand back: ``python -m bertbook.grade ... --feedback DIR``.

One HTML file per graded notebook: the student, the exercise, the score, every question's points,
its cases (PASS, or FAIL with the reason and the named mistake) and its hint, in the words the
in-notebook ``check`` prints (``checks.format_result``), and the cells that failed. Everything a
student wrote (their folder name, their error messages, their values) is text, never markup:
control characters are shown as escapes, then every string is HTML-escaped; the page also forbids
scripts and outside resources (Content-Security-Policy), should anything slip through.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from . import escape, gradebook
from .checks import format_result, questions_for

# Control, format (bidi overrides) and undecodable characters shown as escapes, lines kept: the
# same rule as every other output of the grader.
printable = escape.lines


def esc(text: object) -> str:
    return html.escape(printable(str(text)), quote=True)


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem;
       color: #1a1a1a; line-height: 1.5; }
pre { background: #f5f5f5; padding: 0.75rem; overflow-x: auto; white-space: pre-wrap; }
.score { font-size: 1.25rem; font-weight: 600; }
.full { color: #1b5e20; } .partial { color: #8a4b00; } .zero { color: #b00020; }
table { border-collapse: collapse; } td, th { padding: 0.2rem 0.8rem; text-align: left; }
"""


def _klass(points: float | None, max_points: float) -> str:
    if points is None:  # a grader error: no score at all, not a zero
        return "none"
    return "full" if points >= max_points else ("zero" if points <= 0 else "partial")


def _points(points: float | None) -> str:
    return (
        "none (the grader failed; your notebook will be graded again)"
        if points is None
        else f"{points:g}"
    )


def page(report, meta: dict | None = None) -> str:
    """The feedback page of one report (``bertbook.grade.Report``)."""
    meta = meta or {}
    try:
        questions = questions_for(report.exercise) if report.exercise else {}
    except KeyError:
        questions = {}
    title = f"Feedback: {report.exercise or 'not an exercise'}, {report.student}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="score {_klass(report.points, report.max_points)}">Score: '
        f"{esc(_points(report.points))} / {esc(report.max_points)}</p>",
        f"<p>Notebook: <code>{esc(Path(report.path).name)}</code></p>",
    ]
    if report.status != "graded":
        out.append(f"<p><strong>Status:</strong> {esc(report.status)}</p>")
    if report.results:
        out.append("<table><tr><th>question</th><th>points</th></tr>")
        for r in report.results:
            out.append(
                f'<tr><td><a href="#{esc(r.question)}">{esc(r.question)}</a></td>'
                f'<td class="{_klass(r.points, r.max_points)}">'
                f"{esc(f'{r.points:g}')} / {esc(r.max_points)}</td></tr>"
            )
        out.append("</table>")
    failed_cells = [c for c in report.cells if c.status != "ok"]
    if failed_cells:
        out.append("<h2>Cells that did not run cleanly</h2><ul>")
        for c in failed_cells:
            why = f": {c.error}" if c.error else ""
            out.append(f"<li>cell {esc(c.index)}: {esc(c.status)}{esc(why)}</li>")
        out.append("</ul>")
    for r in report.results:
        q = questions.get(r.question)
        heading = f"{r.question}: {q.title or q.function}" if q is not None else r.question
        hint = q.hint if q is not None and r.failed else ""
        out.append(f'<h2 id="{esc(r.question)}">{esc(heading)}</h2>')
        out.append(f"<pre>{esc(format_result(r, hint))}</pre>")
    run = ", ".join(f"{k} {v}" for k, v in meta.items())
    if run:
        out.append(f"<p><small>Graded with {esc(run)}.</small></p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:80]


def write(reports, folder, meta: dict | None = None) -> list[Path]:
    """One file per report in ``folder`` (created), named after the student and the exercise
    (characters outside [A-Za-z0-9._-] replaced, a number added where two names meet)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    written = []
    for report in reports:
        stem = _slug(report.student or Path(report.path).stem) or "student"
        stem += f"_{_slug(report.exercise)}" if report.exercise else ""
        name, n = f"{stem}.html", 1
        while name.lower() in used:
            n += 1
            name = f"{stem}-{n}.html"
        used.add(name.lower())
        path = folder / name
        gradebook.atomic_write(str(path), page(report, meta))
        written.append(path)
    return written
