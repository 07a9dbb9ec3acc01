# Two commands: `make run` and `make test`. Both bootstrap .venv when missing, install the
# package and its dependencies, build the Cython extensions in place (only what changed), then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.livestack-installed

.PHONY: run test build bench clean distclean

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip "setuptools>=68" wheel "Cython>=3.0" "numpy>=1.26" "picows>=2.3,<3"
	$(PY) -m pip install -q --no-build-isolation -e '.[test]'
	touch $@

build: $(STAMP)
	@$(PY) setup.py -q build_ext --inplace -j 2

run: build
	$(VENV)/bin/livestack run $(ARGS)

test: build
	$(PY) -m pytest $(PYTEST_ARGS)

# Every benchmark but the 10-minute soak (bench/soak.py); each prints a table and writes bench/results/.
BENCHES := ring core tick_to_trade writer control kill fix feed sim matching
bench: build
	@for b in $(BENCHES); do echo "=== bench_$$b"; $(PY) bench/bench_$$b.py || exit 1; done

clean:
	rm -rf build
	find livestack -name '*.so' -delete
	find livestack -name '*.c' -delete

distclean: clean
	rm -rf $(VENV)
