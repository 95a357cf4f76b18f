"""`make pdf`: _build/pdf/book.pdf holds every page of the book in the order of _toc.yml, with a
bookmark each, every chapter's title on its first page, the figures of the HTML book, and a
copy where the intro page's download link points."""

import json
import os
import re
import sys

import pytest
from conftest import BUILD, ROOT, need_built_book

sys.path.insert(0, str(ROOT / "scripts"))
import book_pdf  # noqa: E402

PDF = BUILD / "pdf" / "book.pdf"
# A raster figure in a page's article (the launch menu's logos are outside it).
FIGURE = re.compile(r'<img[^>]*src="[^"]*\.(?:png|jpe?g)"', re.IGNORECASE)


@pytest.fixture(scope="module")
def pdf():
    need_built_book()
    if not PDF.exists():
        message = "the PDF is not built: run `make pdf` after `make book`"
        if os.environ.get("BERTBOOK_REQUIRE_BOOK") == "1":
            pytest.fail(message)
        pytest.skip(message)
    pypdf = pytest.importorskip("pypdf")
    return pypdf.PdfReader(PDF)


def _chapter_titles() -> dict[str, str]:
    titles = {}
    for path in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        first = next(c for c in cells if c["cell_type"] == "markdown" and "".join(c["source"]))
        heading = "".join(first["source"]).splitlines()[0]
        assert heading.startswith("# "), f"{path.name} does not start with a title"
        titles[f"book/{path.stem}.html"] = heading[2:].strip()
    return titles


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text).replace("\u2010", "-")


def _images(resources) -> int:
    """Raster images drawn on a page, including those inside form XObjects (Chromium uses both)."""
    if resources is None:
        return 0
    count = 0
    for ref in resources.get_object().get("/XObject", {}).values():
        xobject = ref.get_object()
        if xobject.get("/Subtype") == "/Image":
            count += 1
        elif xobject.get("/Subtype") == "/Form":
            count += _images(xobject.get("/Resources"))
    return count


def test_every_page_of_the_book_is_in_it_with_a_bookmark(pdf):
    pages = book_pdf.toc_pages()
    outline = [item for item in pdf.outline if not isinstance(item, list)]
    assert len(outline) == len(pages)
    assert len(pdf.pages) >= len(pages)


def test_every_chapter_title_is_on_its_first_page(pdf):
    pages = book_pdf.toc_pages()
    outline = [item for item in pdf.outline if not isinstance(item, list)]
    titles = _chapter_titles()
    assert len(titles) >= 7
    for path, title in titles.items():
        item = outline[pages.index(path)]
        assert item.title == title
        text = pdf.pages[pdf.get_destination_page_number(item)].extract_text()
        assert _squash(title) in _squash(text), f"{title!r} is not on its first page"


def test_the_figures_are_in_it(pdf):
    html = need_built_book()
    figures = 0
    for path in book_pdf.toc_pages():
        page = (html / path).read_text()
        article = page[page.find("<article") : page.rfind("</article>")]
        figures += len(FIGURE.findall(article))
    images = sum(_images(page.get("/Resources")) for page in pdf.pages)
    assert images >= figures, f"{images} images in the PDF, {figures} figures in the book"


def test_the_intro_page_links_to_a_copy_of_it(pdf):
    html = need_built_book()
    assert 'href="../book.pdf"' in (html / "book" / "intro.html").read_text()
    assert (html / "book.pdf").read_bytes() == PDF.read_bytes()


def test_the_toc_order_starts_with_the_intro_and_covers_every_chapter():
    pages = book_pdf.toc_pages()
    assert pages[0] == "book/intro.html"
    assert set(_chapter_titles()) <= set(pages)
    assert len(pages) == len(set(pages))
