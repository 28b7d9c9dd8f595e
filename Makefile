# Thin aliases for maintainers; a newcomer needs only `python3 bootstrap.py [test]`.
PYTHON ?= python

.PHONY: install lint format test notebooks check

install:
	$(PYTHON) -m pip install -e ".[dev]"

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format:
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

test:
	$(PYTHON) -m pytest

notebooks:
	$(PYTHON) tools/build_notebooks.py

check: lint test
