"""The built book as one PDF: python scripts/book_pdf.py  (or `make pdf`)

Prints every page of _build/html, in the order of _toc.yml, with headless Chromium (Debian's,
driven by Playwright: Jupyter Book's own `pdfhtml` builder wants a browser that Playwright
downloads, which cannot be had offline), after MathJax has typeset the math and with every
folded code cell opened, and merges the pages with pypdf into _build/pdf/book.pdf, one bookmark
per page. Links to other pages of the book would point at the temporary local server, so they
are made plain text; links within a page and to the web stay. A copy goes to
_build/html/book.pdf, where the intro page's download link points. Works offline.
"""

from __future__ import annotations

import functools
import http.server
import io
import shutil
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import yaml
from playwright.sync_api import sync_playwright
from pypdf import PdfWriter

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
OUT = ROOT / "_build" / "pdf" / "book.pdf"
TYPESET = "window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0"
PREPARE = """base => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('a[href]').forEach(a => {
    const u = new URL(a.href, document.baseURI);
    const samePage = u.origin + u.pathname === location.origin + location.pathname;
    if (u.origin === base && !samePage) a.removeAttribute('href');
  });
}"""


def toc_pages() -> list[str]:
    """The pages of _toc.yml in reading order, as paths of _build/html."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [f"{f}.html" for f in files]


def _serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        sys.exit("Chromium is not installed (apt-get install chromium)")
    return exe


def build(html: Path = HTML, out: Path = OUT) -> int:
    if not (html / "index.html").exists():
        sys.exit("the book is not built: run `make book` first")
    pages = toc_pages()
    missing = [p for p in pages if not (html / p).exists()]
    if missing:
        sys.exit(f"pages of _toc.yml missing from {html}: {missing}")
    server, base = _serve(html)
    writer = PdfWriter()
    start = time.perf_counter()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
            page = browser.new_page()
            # Offline: anything that is not the local server is refused.
            page.route(
                "**/*",
                lambda r: (
                    r.continue_() if urlparse(r.request.url).hostname == "127.0.0.1" else r.abort()
                ),
            )
            for path in pages:
                page.goto(f"{base}/{path}", wait_until="networkidle")
                if page.locator("span.math, div.math").count():
                    page.wait_for_function(TYPESET, timeout=60000)
                page.evaluate(PREPARE, base)
                page.emulate_media(media="print")
                pdf = page.pdf(
                    format="A4",
                    print_background=True,
                    margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"},
                )
                first = len(writer.pages)
                writer.append(io.BytesIO(pdf))
                title = page.title().split(" — ")[0].strip() or path
                writer.add_outline_item(title=title, page_number=first)
                print(f"{path}: {len(writer.pages) - first} pages", flush=True)
            browser.close()
    finally:
        server.shutdown()
    writer.add_metadata({"/Title": "How to Understand BERT"})
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        writer.write(f)
    shutil.copyfile(out, html / "book.pdf")  # the intro page links to it
    seconds = time.perf_counter() - start
    print(
        f"{out}: {len(writer.pages)} pages from {len(pages)} pages of the book in {seconds:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(build())
