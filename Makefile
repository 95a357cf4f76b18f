# The two commands of the README. Each creates .venv if needed, installs the pinned
# requirements and the course package, and fetches the pinned data and weights (cached in
# $BERTBOOK_CACHE, default ~/.cache/bertbook) before it starts.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: book pdf test test-latest test-oldest test-latest-chapters resources install clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/activate
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt -e .
	$(BIN)/python -m bertbook.assets fetch

# Build the whole book into _build/html, executing every chapter (warnings are errors).
book: install
	$(BIN)/jupyter-book build . --all -W -n --keep-going

# The built book as one PDF, _build/pdf/book.pdf (and _build/html/book.pdf, which the intro
# page links to): every page printed by headless Chromium, offline. Run after `make book`.
pdf: install
	$(BIN)/python scripts/book_pdf.py

# Run every test: package tests, grader tests, nbval over book/ and solutions/, and, when the
# book has been built, the determinism and browser checks of the built book.
test: install
	$(BIN)/python -m pytest

# The package against the newest / the lowest versions its dependency ranges allow (torch stays
# at its pin), each in a fresh virtualenv under _build/: its tests, grading every solution.
# .ci/run runs both after `make test`.
test-latest test-oldest: install
	scripts/test_versions.sh $(@:test-%=%)

# The newest set, then every chapter and solution executed on it (the weekly workflow
# .github/workflows/newest.yml, which also floats torch to its newest CPU build).
test-latest-chapters: install
	scripts/test_versions.sh latest --chapters

# Every chapter executed once: wall time and peak memory (kernel and its processes) against
# the budgets of bertbook/resources.py. CHAPTERS="04_bert 05_distilbert" for some only.
resources: install
	$(BIN)/python benchmarks/chapter_resources.py $(CHAPTERS)

clean:
	rm -rf _build
