# cami-geo: `make run` runs the pipeline on data/raw, `make test` runs the test suite.
# Both set up what they need first: a .venv with the pinned dependencies and the package,
# the pinned npm assets (integrity-checked by `npm ci`), and the Debian packages the
# documents and the browser tests use.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: setup run test lint dry-run clean system-deps browser-deps

setup: $(VENV)/.installed node_modules/.installed system-deps

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# WeasyPrint needs Pango; the documents need fonts with Cyrillic and CJK glyphs.
system-deps:
	@if ! ldconfig -p | grep -q libpango-1.0 || ! fc-list | grep -qi 'noto.*cjk'; then \
	  echo "Installing Debian packages: libpango, fonts (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core fonts-noto-cjk >/dev/null; \
	fi

# The browser tests drive Debian's Chromium; document tests read PDFs with poppler.
browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v pdftoppm >/dev/null; then \
	  echo "Installing Debian packages: chromium, poppler-utils (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium poppler-utils >/dev/null; \
	fi

run: setup
	$(BIN)/snakemake --cores $(CORES)

test: setup browser-deps
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/snakemake --lint

dry-run: setup
	$(BIN)/snakemake -n

clean:
	rm -rf data/processed maps reports logs .snakemake
