"""Feedback files: every question's points, cases, named mistakes and hint, in the words of the
in-notebook check; student text shown as text, never read as markup."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from bertbook import feedback, sandbox
from bertbook.checks import Result, format_result, questions_for
from bertbook.grade import Report
from bertbook.grade import main as grade_main
from bertbook.kernel import CellRun

REPO = Path(__file__).resolve().parents[1]
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp;\x1b[2J\u202eevil'
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "code", "strong",
    "table", "tr", "th", "td", "a", "ul", "li", "pre", "small",
}  # fmt: skip


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.attrs = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def hostile_report() -> Report:
    q1 = Result("q1", 1.0, 3, passed=["a case"], failed=[("masked", f"raised {HOSTILE}")])
    q2 = Result("q2", 0.0, 2, failed=[("all", "not implemented yet")], note="not implemented yet")
    cells = [CellRun(3, "error", f"NameError: {HOSTILE}")]
    return Report(
        f"sub/{HOSTILE}/02_transformer.ipynb", "02_transformer", [q1, q2], cells, 0, HOSTILE
    )


def test_student_text_is_text(tmp_path):
    report = hostile_report()
    [path] = feedback.write([report], tmp_path, {"seed": 7, "grader_version": "x"})
    assert path.parent == tmp_path and path.name.endswith("_02_transformer.html")
    assert "<" not in path.name and "/" not in path.name[:-5]
    page = parse(path.read_text(encoding="utf-8"))
    assert set(page.tags) <= ALLOWED_TAGS, set(page.tags) - ALLOWED_TAGS
    assert not any(name.startswith("on") for name, _ in page.attrs)
    text = "".join(page.text)
    shown = feedback.printable(HOSTILE)  # what the reader sees: the characters, as text
    assert '<script>alert("x")</script>' in shown and "\\x1b" in shown and "\\u202e" in shown
    assert text.count(shown) >= 3  # title, student, failed case, cell error
    assert "\x1b" not in path.read_text() and "\u202e" not in path.read_text()


def test_same_words_as_the_check(tmp_path):
    report = hostile_report()
    [path] = feedback.write([report], tmp_path)
    text = "".join(parse(path.read_text()).text)
    question = questions_for("02_transformer")["q1"]
    words = feedback.printable(format_result(report.results[0], question.hint))
    assert words in text  # the points, PASS/FAIL lines and the hint, as check prints them
    assert "q2: 0/2 points" in text and "not implemented yet" in text
    assert "Score: 1 / 5" in text


def test_names_never_collide(tmp_path):
    a, b = hostile_report(), hostile_report()
    b.student = HOSTILE.replace("evil", "EVIL")  # the same file name once slugged, any case
    paths = feedback.write([a, b, a], tmp_path)
    assert len({p.name.lower() for p in paths}) == 3 and all(p.exists() for p in paths)


@pytest.mark.skipif(sandbox.unavailable_reason() is not None, reason="needs the sandbox")
def test_grade_writes_feedback(tmp_path):
    folder = tmp_path / "class" / "ada <b>"
    folder.mkdir(parents=True)
    (folder / "02_transformer.ipynb").write_bytes(
        (REPO / "exercises" / "02_transformer.ipynb").read_bytes()
    )
    out = tmp_path / "feedback"
    assert grade_main([str(tmp_path / "class"), "--feedback", str(out), "-j", "1"]) == 0
    [path] = out.iterdir()
    assert path.name == "ada_b_02_transformer.html"
    page = parse(path.read_text())
    assert "ada <b>" in "".join(page.text) and "b" not in page.tags
    assert "not implemented yet" in "".join(page.text)
