# make demo: install, then run the smoke sweep (search_spaces/smoke.yaml) on this machine.
# make test: install, then the linter and the whole test suite (slow tests included), as CI does.
VENV ?= .venv
PY := $(VENV)/bin/python
export TUNER_DATA_DIR ?= $(abspath ../shared/data/cifar10)

.PHONY: install test demo
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

test: install
	$(PY) -m ruff check trainables tuner benchmarks tools tests
	$(PY) -m pytest

demo: install
	$(PY) -m tuner.launch search_spaces/smoke.yaml
