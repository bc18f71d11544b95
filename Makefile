# Two commands on a fresh machine: `make serve` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test install install-test

serve: install
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: install-test
	$(BIN)/python -m pytest

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { \
		echo "make: there is no $(PYTHON) here; name a Python 3.11 to 3.13 that is installed," \
		"as in: make PYTHON=/usr/bin/python3.11 $(MAKECMDGOALS)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys' 2>/dev/null || { \
		echo "make: $(PYTHON) is here but does not run (a pyenv shim of a version not installed?);" \
		"name a Python 3.11 to 3.13 that runs, as in: make PYTHON=/usr/bin/python3.11 $(MAKECMDGOALS)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "make: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())')," \
		"older than the 3.11 the pinned packages need; name a newer one, as in: make PYTHON=python3.12 $(MAKECMDGOALS)" >&2; \
		exit 1; }
# tensorflow==2.21.0 has wheels for CPython 3.10 to 3.13 only: on 3.14 pip would make .venv, then stop.
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info >= (3, 14))' || { \
		echo "make: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())')," \
		"newer than the 3.13 that TensorFlow 2.21 has wheels for; name an older one, as in: make PYTHON=python3.13 $(MAKECMDGOALS)" >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)
# setuptools too: a 3.11 venv starts with the 65.5 it bundles, which security scanners flag (CVE-2024-6345).
	$(BIN)/pip install -q --upgrade pip setuptools
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(BIN)/pip install -q -r requirements-test.txt
	touch $@
