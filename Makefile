# One command each: `make demo` (set up + quick sweep) and `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data
RUN ?= runs/sst2-quick

.PHONY: setup test demo clean chromium postgresql

setup: $(VENV)/.installed

# CPU PyTorch is pinned first: an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The report test renders report.html in Debian's headless Chromium.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# The distributed test starts a throwaway PostgreSQL server; Debian keeps its binaries off PATH.
postgresql:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

test: setup chromium postgresql
	$(PY) -m pytest -q --durations=40 tests

demo: setup
	$(PY) run_sweep.py sweep --task sst2 --data-dir $(DATA) --preset quick --run-dir $(RUN)

clean:
	rm -rf $(VENV) runs .cache
