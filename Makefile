# Two entry points: `make demo` (set up + the main job on the embedded default) and
# `make test` (set up + lint, types and the whole test suite). Everything installs from
# pyproject.toml into .venv; nothing is installed by hand.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROMPT ?= invoice number, date, total

.PHONY: setup system-packages demo test lint typecheck pytest docs docs-images clean

# The Voila template is copied into the virtualenv at install: a change to it installs again.
$(BIN)/.installed: pyproject.toml $(wildcard templates/batchnb/*)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed

# Debian packages the tests need (tesseract for OCR); installs only what is missing, as root.
system-packages:
	bash scripts/system-packages.sh

demo: setup
	$(BIN)/batchnb run samples/documents --prompt "$(PROMPT)"

lint: setup
	$(BIN)/ruff check batchnb tests benchmarks samples scripts deploy/alerts
	$(BIN)/ruff format --check batchnb tests benchmarks samples scripts deploy/alerts

typecheck: setup
	$(BIN)/mypy

pytest: setup system-packages
	$(BIN)/pytest

test: lint typecheck pytest

# The documentation site in site/ (mkdocs; warnings are errors). `mkdocs serve` previews it.
docs: setup
	$(BIN)/mkdocs build --strict

# The README's and docs' pictures, taken again by the browser tests (screenshot(docs_image=...)).
docs-images: setup system-packages
	BATCHNB_TEST_UPDATE_DOCS_IMAGES=1 $(BIN)/pytest -m browser

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
