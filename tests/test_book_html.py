"""The built book in a real browser: headless Chromium (Debian's) driven by Playwright.

Every page loads without console errors, every image displays, math is typeset by the
offline MathJax, notebook pages have Binder and Colab launch links to their own notebook, and
no request leaves localhost."""

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import ROOT, need_built_book

from bertbook import maint

pytestmark = pytest.mark.timeout(600)
# What MathJax leaves where it typeset a formula (MathML output, or its HTML-CSS/SVG outputs).
TYPESET = ".MathJax_MathML, .MathJax, .MathJax_Display, .MathJax_SVG"


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


def _pages(html: Path) -> list[str]:
    return sorted(
        str(p.relative_to(html))
        for p in html.rglob("*.html")
        if not p.relative_to(html).parts[0].startswith("_")
    )


def _visit(browser, base: str, page_path: str) -> dict:
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
    page.close()
    return info


def test_every_page_in_a_browser(site, browser):
    html, base = site
    pages = _pages(html)
    assert "book/intro.html" in pages and len(pages) >= 5
    problems = []
    for path in pages:
        info = _visit(browser, base, path)
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
