# The two commands of the README. Each creates .venv if needed, installs the pinned
# requirements and the course package, and fetches the pinned data and weights (cached in
# $BERTBOOK_CACHE, default ~/.cache/bertbook) before it starts.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: book pdf test test-latest test-oldest test-latest-chapters test-grader-layout resources install clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# Installed once per change of the requirements (every target below depends on it: a no-op pip
# install of the requirements still took minutes, building the editable package each time).
# torch with pip, which honours the machine's or CI's index for its CPU build; then uv installs
# the rest in parallel (it keeps the torch already there, which satisfies the pin).
$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install -q --disable-pip-version-check \
	  "$$(grep -i '^torch==' requirements.txt)" "$$(grep -i '^uv==' requirements.txt)"
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.txt -e .
	touch $@

install: $(VENV)/.installed
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

# The grader's tests again with the repository and its venv copied under /tmp, in a folder
# whose name has a space and a non-ASCII letter (a second layout; .ci/run runs it).
test-grader-layout: install
	scripts/test_grader_layout.sh

# Every chapter executed once: wall time and peak memory (kernel and its processes) against
# the budgets of bertbook/resources.py. CHAPTERS="04_bert 05_distilbert" for some only.
resources: install
	$(BIN)/python benchmarks/chapter_resources.py $(CHAPTERS)

clean:
	rm -rf _build
