# Thin aliases for maintainers; a newcomer needs only `python3 bootstrap.py [test]`.
# The course's own environment when bootstrap.py has made it, else whatever python is active.
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python)
# Idle OpenMP threads of one test process must not spin while another needs the core.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install lint types format test test-fast notebooks check

install:
	$(PYTHON) -m pip install -e ".[dev]"

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

types:
	$(PYTHON) -m mypy

format:
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

test:
	$(PYTHON) -m pytest

# The edit-test loop: lint, types and every test not marked slow (no notebook execution,
# no training at lesson size, no nbval). Run `make test` before pushing.
test-fast: lint types
	$(PYTHON) -m pytest -m "not slow" -n auto --maxprocesses 4 --dist loadgroup tests

notebooks:
	$(PYTHON) tools/build_notebooks.py

check: lint types test
