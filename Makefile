# Two commands for a new user: `make run` and `make test`. Everything they need
# is installed from here into .venv/ (and Debian packages for the browser test).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
CLIPKIT_HOME ?= clipkit-data
PORT ?= 8501
# numba's JIT cache lives in .venv/.numba-cache (chosen by clipkit.anonymize, so
# `clipkit anonymize` run by hand finds the same warm cache as `make run`)

.PHONY: run test install install-test warm warm-background demo bench bench-privacy clean-demo

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install -q --python $(PY) -c constraints.txt -e .
	touch $@

install: $(VENV)/.installed

$(VENV)/.installed-test: $(VENV)/.installed
	$(UV) pip install -q --python $(PY) -c constraints.txt -e '.[test]'
	bash scripts/install-browser.sh
	touch $@

install-test: $(VENV)/.installed-test

# compile librosa's numba kernels once (~30 s on 2 cores), so nobody waits on a first
# `--method pitch`; only that weaker method uses them, the default strong chain does not
$(VENV)/.warm: $(VENV)/.installed
	@echo "Compiling librosa's numba code for the pitch method (about 30 s, once per install)..."
	$(PY) -m clipkit.anonymize --warm
	touch $@

warm: $(VENV)/.warm

# `make run` does not wait for it: the compile runs in the background while the app starts
warm-background: install
	@if [ ! -e $(VENV)/.warm ]; then \
		echo "Compiling librosa's numba code for the pitch method in the background (log: $(VENV)/warm.log)"; \
		(nohup $(PY) -m clipkit.anonymize --warm > $(VENV)/warm.log 2>&1 && touch $(VENV)/.warm) & \
	fi

demo: install
	@echo "Building the demo library in $(CLIPKIT_HOME)/ (first run: import, analyse, anonymize six calls)..."
	$(PY) -m clipkit.demo --home $(CLIPKIT_HOME)

run: warm-background demo
	$(VENV)/bin/streamlit run app_server.py --server.address 127.0.0.1 --server.port $(PORT) \
		--browser.gatherUsageStats false --server.headless true

test: install-test warm
	$(PY) -m pytest -q -n 2

bench: install warm
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# the attacker (resemblyzer + torch) lives in its own venv, bench/.venv-privacy
bench-privacy: install
	$(PYTHON) bench/privacy.py --setup
	$(PYTHON) bench/privacy.py
	$(PYTHON) bench/privacy_keysets.py
	$(PYTHON) bench/privacy_trained.py
	$(PY) bench/record_measured.py

clean-demo:
	rm -rf $(CLIPKIT_HOME)
