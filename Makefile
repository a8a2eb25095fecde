# Quick start:  make demo   (set up a virtualenv and stage a simulated night, no network)
#               make test   (set up and run the test suite)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup browser demo test lint bench docs

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build of PyTorch first: an unpinned torch would pull gigabytes of CUDA packages.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,deep,docs,peers]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/hypnoscope demo --out hypnoscope-demo

# Chromium (Debian's package) for the browser tests of `hypnoscope review`
# (tests/test_review_browser.py); installed when missing and run as root, else how to install it
browser:
	@command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then \
	  export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q chromium \
	  || { apt-get update -q && apt-get install -y -q chromium; } \
	  || echo "could not install Chromium with apt-get: the browser tests will say so"; \
	else echo "the browser tests need Chromium: sudo apt-get install -y chromium"; fi; }

test: setup browser
	MPLBACKEND=Agg HYPNOSCOPE_PROGRESS=0 $(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/lint-imports

# the documentation site (docs/, mkdocs.yml) in build/site/; --strict fails on any warning
docs: setup
	$(VENV)/bin/ruff check docs
	$(PY) docs/gen_results.py --check
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site
