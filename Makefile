# make demo: install, then run the smoke sweep (search_spaces/smoke.yaml) on this machine.
# make test: install, then the linter and the whole test suite (slow tests included), as CI does.
# make test-fast: install, then the linter and the tests not marked slow: the loop while editing.
VENV ?= .venv
PY := $(VENV)/bin/python
export TUNER_DATA_DIR ?= $(abspath ../shared/data/cifar10)

.PHONY: install bytecode test test-fast demo constraints
install: $(VENV)/.installed

# The versions of constraints.txt: what the suite passed with, not whatever is newest today. uv installs
# them (pip installs uv itself): in a new venv on a 2-core machine this step took 67 s, uv's own step 41 s,
# where pip took 131 s (2026-12-07), as uv fetches and unpacks in parallel. --compile-bytecode: pip compiles what it
# installs and uv does not by default, and without the bytecode every process would compile ray's,
# torch's and mlflow's sources again where PYTHONDONTWRITEBYTECODE is set.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt uv
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -c constraints.txt -e ".[test]"
	touch $@

# The project's bytecode, compiled ahead: pip compiles what it installs, but not the sources of an editable
# install, and where PYTHONDONTWRITEBYTECODE is set (as on this machine) every process that imports
# them compiled them again: each sweep's driver and each trial's process, 0.4 CPU-s each. Imports still
# check each source's time stamp, so an edit after this step costs only that time again.
bytecode: install
	$(PY) -m compileall -q trainables tuner benchmarks tools tests

# After an upgrade (pip install -U ... in the venv) that passed make test: record its versions.
constraints:
	{ sed -n '1,3p' constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.new && mv constraints.new constraints.txt

RUFF := $(PY) -m ruff check trainables tuner benchmarks tools tests

# The whole suite in two phases: everything but the `serial` tests on two workers (pytest-xdist; an
# xdist_group keeps the tests that share a sweep, or Ray's machine-wide address file, on one worker),
# then the `serial` tests (the image and its compose stack; the lease's wall-clock budgets) away from the
# fault tests, which kill processes machine-wide by their Ray titles. Two workers, not three: three on two
# cores took longer (the parallel phase 36.7 minutes against 34.0, 2026-12-06). The serial phase runs on
# two workers too: the image tests (one xdist_group) beside the lease test, each on the other's idle core.
# The image the serial phase runs is built in the background from the start (tests/image_build.py, the
# system's python3: it needs only the standard library), beside the install and then beside the
# parallel phase; it is stopped when either fails, and a failed build fails the image tests.
# --durations=25: every run prints its 25 slowest tests, so the next person sees where the time goes.
TEST_WORKERS ?= 2
IMAGE_BUILD := $(CURDIR)/.image-build
test:
	rm -rf $(IMAGE_BUILD) && mkdir $(IMAGE_BUILD) && \
	{ setsid python3 tests/image_build.py $(IMAGE_BUILD) > $(IMAGE_BUILD)/build.log 2>&1 & build=$$!; } && \
	{ { $(MAKE) --no-print-directory bytecode && $(RUFF) && \
	    $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not serial" --durations=25; } || \
	  { kill -- -$$build 2>/dev/null; exit 1; }; } && \
	wait $$build; TUNER_PREBUILT_IMAGE=$(IMAGE_BUILD) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m serial --durations=25

# The tests not marked slow on the same two workers as make test's parallel phase (its groups keep what
# shares a sweep or Ray's address file on one worker): on one they took 3m48 to 4m07 here (2026-12-07).
test-fast: bytecode
	$(RUFF)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow" --durations=10

demo: install
	$(PY) -m tuner.launch search_spaces/smoke.yaml
