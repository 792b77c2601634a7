# wavegen: the two set-up commands are `make quickstart` and `make test`.
# Both create .venv and install wavegen into it on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install data-tools quickstart test test-slow test-cuda bench notebook clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@$(MAKE) --no-print-directory data-tools
	touch $(STAMP)

# fluidsynth + the FluidR3 General MIDI piano render the sampled-piano half of the embedded data
# (data.renderer=both, the vocoder recipe). Installed when apt can; otherwise one line says so
# and everything else works with data.renderer=builtin.
FLUID_SF2 := /usr/share/sounds/sf2/FluidR3_GM.sf2
data-tools:
	@if command -v fluidsynth >/dev/null 2>&1 && [ -f $(FLUID_SF2) ]; then \
	  echo "fluidsynth and the FluidR3 piano are installed"; \
	elif (apt-get install -y -qq fluidsynth fluid-soundfont-gm || \
	      (apt-get update -qq && apt-get install -y -qq fluidsynth fluid-soundfont-gm)) >/dev/null 2>&1; then \
	  echo "installed fluidsynth and fluid-soundfont-gm"; \
	else \
	  echo "note: could not install fluidsynth and fluid-soundfont-gm (needs apt as root); data.renderer=both needs them, data.renderer=builtin does not"; \
	fi

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
