# One command each: `make demo` (set up + quick sweep) and `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data
RUN ?= runs/quick

.PHONY: setup test demo clean

setup: $(VENV)/.installed

# CPU PyTorch is pinned first: an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

test: setup
	$(PY) -m pytest -q tests

demo: setup
	$(PY) run_sweep.py sweep --task sst2 --data-dir $(DATA) --preset quick --run-dir $(RUN)

clean:
	rm -rf $(VENV) runs .cache
