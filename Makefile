# wavegen: the two set-up commands are `make quickstart` and `make test`.
# Both create .venv and install wavegen into it on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install quickstart test test-slow test-cuda bench notebook clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Main job: builds the embedded piano data, trains the quickstart WaveNet, writes sample WAVs + PNGs.
quickstart: install
	$(VENV)/bin/wavegen recipe run quickstart

# The default test run (what CI runs): CPU only, under 20 minutes on 2 cores.
test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

test-cuda: install
	$(PY) -m pytest -q -m cuda

bench: install
	$(PY) benchmarks/incremental_vs_recompute.py

clean:
	rm -rf runs build dist *.egg-info .pytest_cache
