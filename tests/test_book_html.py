"""The built book in a real browser: headless Chromium (Debian's) driven by Playwright.

Every page loads without console errors, every image displays, math is typeset by the
offline MathJax, notebook pages have Binder and Colab launch links to their own notebook, and
no request leaves localhost. Every page passes axe-core's WCAG 2.0 and 2.1 A and AA rules with
no violation (axe is installed from npm at test time into _build/, never committed), and every
image has alt text that is not a file name (axe accepts a file name as alt text)."""

import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import ROOT, need_built_book

from bertbook import maint

pytestmark = pytest.mark.timeout(600)
# What MathJax leaves where it typeset a formula (MathML output, or its HTML-CSS/SVG outputs).
TYPESET = ".MathJax_MathML, .MathJax, .MathJax_Display, .MathJax_SVG"
AXE = ("axe-core", "4.14.1")
AXE_RUN = (
    "() => axe.run(document, {runOnly: {type: 'tag',"
    " values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
)
# An alt text that is a file name or path (what an image gets when nobody wrote one).
FILE_NAME = re.compile(r"^\S*\.(png|jpe?g|gif|svg|webp|pdf)$|^\S*/\S*$", re.IGNORECASE)


@pytest.fixture(scope="module")
def site():
    html = need_built_book()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield html, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Chromium is not installed (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def axe_script() -> Path:
    """axe-core's browser bundle, installed with npm into _build/ on first use."""
    need_built_book()
    name, version = AXE
    prefix = ROOT / "_build" / "tools"
    script = prefix / "node_modules" / name / "axe.min.js"
    package = script.parent / "package.json"
    if not (package.exists() and json.loads(package.read_text())["version"] == version):
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(
                "npm is not installed (apt-get install npm): the accessibility check needs it"
            )
        subprocess.run(
            [
                npm,
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(prefix),
                f"{name}@{version}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return script


def _pages(html: Path) -> list[str]:
    return sorted(
        str(p.relative_to(html))
        for p in html.rglob("*.html")
        if not p.relative_to(html).parts[0].startswith("_")
    )


def _visit(browser, base: str, page_path: str, axe: Path | None = None) -> dict:
    page = browser.new_page()
    errors, outside = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "response",
        lambda r: errors.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None,
    )

    def route(r):
        host = urlparse(r.request.url).hostname
        if host not in ("127.0.0.1", "localhost"):
            outside.append(r.request.url)
            return r.abort()
        return r.continue_()

    page.route("**/*", route)
    page.goto(f"{base}/{page_path}", wait_until="networkidle")
    info = {"errors": errors, "outside": outside}
    info["broken_images"] = page.eval_on_selector_all(
        "img", "els => els.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    info["has_math"] = page.eval_on_selector_all("span.math, div.math", "els => els.length") > 0
    if info["has_math"]:
        page.wait_for_function(
            "() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0"
            f" && document.querySelectorAll('{TYPESET}').length > 0",
            timeout=30000,
        )
        info["typeset"] = page.eval_on_selector_all(TYPESET, "els => els.length")
    info["links"] = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
    info["images"] = page.eval_on_selector_all(
        "img", "els => els.map(i => [i.getAttribute('alt'), i.getAttribute('src')])"
    )
    if axe is not None:
        page.add_script_tag(path=str(axe))
        info["violations"] = [
            f"{v['id']} ({v['impact']}, {len(v['nodes'])}x, e.g. {v['nodes'][0]['target']})"
            for v in page.evaluate(AXE_RUN)["violations"]
        ]
    page.close()
    return info


@pytest.fixture(scope="module")
def visits(site, browser, axe_script) -> dict[str, dict]:
    """Every page of the book, visited once; what each check needs from it."""
    html, base = site
    return {path: _visit(browser, base, path, axe_script) for path in _pages(html)}


def test_every_page_in_a_browser(visits):
    pages = list(visits)
    assert "book/intro.html" in pages and len(pages) >= 5
    problems = []
    for path, info in visits.items():
        for e in info["errors"]:
            problems.append(f"{path}: console error: {e}")
        for u in info["outside"]:
            problems.append(f"{path}: request leaves localhost: {u}")
        for src in info["broken_images"]:
            problems.append(f"{path}: image does not display: {src}")
        if info["has_math"] and not info.get("typeset"):
            problems.append(f"{path}: math is not typeset")
        notebook = Path(path).with_suffix(".ipynb")
        if (ROOT / notebook).exists():
            for want in (maint.binder_url(str(notebook)), maint.colab_url(str(notebook))):
                if want not in info["links"]:
                    problems.append(f"{path}: no launch link {want}")
    assert not problems, "\n".join(problems)


def test_no_accessibility_violations_on_any_page(visits):
    """axe-core, WCAG 2.0 and 2.1, levels A and AA: zero violations on every page."""
    problems = [f"{path}: {v}" for path, info in visits.items() for v in info["violations"]]
    assert not problems, f"{len(problems)} axe violations:\n" + "\n".join(problems)


def test_every_image_has_alt_text_that_is_not_a_file_name(visits):
    problems = [
        f"{path}: <img src={src!r}> has alt {alt!r}"
        for path, info in visits.items()
        for alt, src in info["images"]
        if not (alt or "").strip() or FILE_NAME.match(alt.strip())
    ]
    assert not problems, f"{len(problems)} images without alt text:\n" + "\n".join(problems)


def test_the_alt_text_check_knows_a_file_name():
    for alt in ("../_images/abc.png", "figure.svg", "_build/jupyter_execute/x"):
        assert FILE_NAME.match(alt)
    for alt in ("Binder logo", "Attention weights: each row sums to 1 (heatmap.png shows)"):
        assert not FILE_NAME.match(alt)


def test_math_is_rendered_on_the_warm_up(site, browser):
    html, base = site
    info = _visit(browser, base, "book/00_intro.html")
    assert info["has_math"] and info["typeset"] >= 3


def test_attention_viewer_works_in_the_static_page(site, browser):
    """Chapter 4's viewer: drawn without a kernel, and its selectors redraw it."""
    html, base = site
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/book/04_bert.html", wait_until="networkidle")
    viewer = page.locator(".bb-attention").first
    n_tokens = page.evaluate(
        "() => JSON.parse(document.querySelector('.bb-attention script[type=\"application/json\"]')"
        ".textContent).tokens.length"
    )
    assert viewer.locator("text.bb-token").count() == 2 * n_tokens  # both columns of tokens
    lines_before = viewer.locator("line.bb-line").count()
    assert lines_before > 0
    strokes = lambda: viewer.locator("line.bb-line").evaluate_all(
        "ls => ls.map(l => l.getAttribute('y2') + l.getAttribute('stroke-opacity'))"
    )
    first = strokes()
    viewer.locator("select.bb-layer").select_option("0")
    viewer.locator("select.bb-head").select_option("3")
    assert strokes() != first  # another head, other lines
    viewer.locator("select.bb-mode").select_option("heatmap")
    assert viewer.locator("rect.bb-cell").count() == n_tokens**2
    page.close()
    assert not errors, errors


def test_the_accessibility_fixes_match_the_theme_markup_once():
    """book/_ext/a11y.py rewrites the written pages; a second build must find nothing to do."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import a11y

    page = (
        '<li class="toctree-l1 current has-children"><a class="current reference internal" '
        'href="01.html">Chapter &quot;1&quot;</a><details open="open"><summary><span '
        'class="toctree-toggle" role="presentation"><i class="fa-solid fa-chevron-down"></i>'
        "</span></summary></details></li>"
        '<button class="btn search-button-field search-button__button pst-js-only" '
        'title="Search" aria-label="Search" data-bs-placement="bottom">Search</button>'
        '<i class="theme-switch fa-solid fa-sun fa-lg" data-mode="light" title="Light"></i>'
        '<div role="list" class="citation-list"><div class="citation" id="id1" '
        'role="doc-biblioentry"></div></div>'
    )
    once = a11y.fix(page)
    assert '<summary aria-label="Show or hide the sections of Chapter &quot;1&quot;">' in once
    assert 'aria-label="Search"' not in once and 'title="Light"' not in once
    assert 'role="listitem"' in once and "doc-biblioentry" not in once
    assert a11y.fix(once) == once
