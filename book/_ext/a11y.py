"""Fix the accessibility faults that the theme and docutils put on every page (axe-core, WCAG 2.0
and 2.1 A and AA), by rewriting the written HTML when the build finishes:

* the sidebar's ``<summary>`` toggles hold only an icon, so they have no name (axe
  ``summary-name``): each gets an ``aria-label`` naming the chapter whose sections it shows;
* the search buttons are labelled "Search" but show "Search Ctrl+K" (axe
  ``label-content-name-mismatch``): the label goes, so their name is what they show; the
  colour-mode button is labelled "Color mode" while Font Awesome turns its visible icon's
  ``title="Light"`` into SVG text (the same rule): the icons lose their titles, and the button
  keeps its label and its "Color mode" tooltip;
* a bibliography is a ``role="list"`` whose entries have ``role="doc-biblioentry"``, a role
  ARIA 1.2 deprecates and that is no list item (axe ``aria-required-children`` and
  ``aria-deprecated-role``): the entries become ``role="listitem"``.

Every rewrite matches only the unfixed markup, so a file rewritten once is left alone by the
next (incremental) build. ``tests/test_book_html.py`` runs axe on every page."""

import html
import re
from pathlib import Path

_TOGGLE = re.compile(
    r'(<a class="[^"]*reference internal[^"]*" href="[^"]*">(?P<title>[^<]*)</a>\s*<details[^>]*>\s*)'
    r"<summary>"
)
_BARE_SUMMARY = re.compile(r'<summary>(?=\s*<span class="toctree-toggle")')
_SEARCH_LABEL = re.compile(
    r'(<button class="btn search-button-field search-button__button[^"]*"[^>]*?) aria-label="[^"]*"'
)
_MODE_ICON_TITLE = re.compile(r'(<i class="theme-switch [^"]*"[^>]*?)\s+title="[^"]*"')
_BIBLIOENTRY = 'role="doc-biblioentry"'


def _label(match: re.Match) -> str:
    title = html.escape(html.unescape(match["title"]).strip(), quote=True)
    return f'{match[1]}<summary aria-label="Show or hide the sections of {title}">'


def fix(page: str) -> str:
    page = _TOGGLE.sub(_label, page)
    page = _BARE_SUMMARY.sub('<summary aria-label="Show or hide these sections">', page)
    page = _SEARCH_LABEL.sub(r"\1", page)
    page = _MODE_ICON_TITLE.sub(r"\1", page)
    return page.replace(_BIBLIOENTRY, 'role="listitem"')


def _rewrite(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    for path in Path(app.outdir).rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        fixed = fix(text)
        if fixed != text:
            path.write_text(fixed, encoding="utf-8")


def setup(app):
    app.connect("build-finished", _rewrite)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
