# The two commands of the README: `make demo` (all notebooks on the sample data) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= build/demo

.PHONY: install git-filters demo lint test browser-test notebooks-sync lab clean

# torch first, pinned to the local CPU build; then everything else without build isolation, because
# deepspeed's setup.py imports torch (an isolated build env would download a CUDA torch).
$(STAMP): pyproject.toml setup.py $(wildcard obert_lib/corpus/native/*.c)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0 "setuptools>=68" wheel
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) git-filters

# Notebooks are committed without outputs: .gitattributes sends notebooks/*.ipynb through the `nbstripout`
# filter, which this defines for the clone (outputs, execution counts and widget state are stripped when
# git reads the file; the file on disk keeps them). --keep-id: the cell ids stay, so a clean notebook is
# unchanged. `git diff` shows the stripped notebook too.
NBSTRIPOUT = $(abspath $(VENV))/bin/python -m nbstripout --keep-id
git-filters:
	git config filter.nbstripout.clean '$(NBSTRIPOUT)'
	git config filter.nbstripout.smudge cat
	git config diff.ipynb.textconv '$(NBSTRIPOUT) -t'

demo: $(STAMP)
	$(PY) -m obert_lib.cli demo --output $(OUT)

# ruff: the linter (pycodestyle, pyflakes, import order) and the formatter's check; settings in pyproject.toml
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP)
	$(PY) -m pytest

# notebook 02 in JupyterLab in headless Chromium (needs `apt-get install chromium fonts-noto-cjk`; .ci/run
# installs them); screenshots in build/browser/
browser-test: $(STAMP)
	$(PY) -m pytest -m browser tests/browser

notebooks-sync: $(STAMP)
	$(VENV)/bin/jupytext --sync notebooks/*.ipynb

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf build runs .pytest_cache
