# make demo: install, then run the smoke sweep (search_spaces/smoke.yaml) on this machine.
# make test: install, then the linter and the whole test suite (slow tests included), as CI does.
VENV ?= .venv
PY := $(VENV)/bin/python
export TUNER_DATA_DIR ?= $(abspath ../shared/data/cifar10)

.PHONY: install test demo constraints
install: $(VENV)/.installed

# The versions of constraints.txt: what the suite passed with, not whatever is newest today.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $@

# After an upgrade (pip install -U ... in the venv) that passed make test: record its versions.
constraints:
	{ sed -n '1,3p' constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.new && mv constraints.new constraints.txt

test: install
	$(PY) -m ruff check trainables tuner benchmarks tools tests
	$(PY) -m pytest

demo: install
	$(PY) -m tuner.launch search_spaces/smoke.yaml
