# The two commands of the README: `make demo` (all notebooks on the sample data) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= build/demo

.PHONY: install demo lint test notebooks-sync lab clean

# torch first, pinned to the local CPU build; then everything else without build isolation, because
# deepspeed's setup.py imports torch (an isolated build env would download a CUDA torch).
$(STAMP): pyproject.toml setup.py $(wildcard obert_lib/corpus/native/*.c)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0 "setuptools>=68" wheel
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m obert_lib.cli demo --output $(OUT)

# ruff: the linter (pycodestyle, pyflakes, import order) and the formatter's check; settings in pyproject.toml
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP)
	$(PY) -m pytest

notebooks-sync: $(STAMP)
	$(VENV)/bin/jupytext --sync notebooks/*.ipynb

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf build runs .pytest_cache
