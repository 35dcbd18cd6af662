.PHONY: install test lint bench check

install:
	python3 -m venv .venv && .venv/bin/pip install -e ".[dev]"

test:
	.venv/bin/pytest -q

lint:
	.venv/bin/ruff check grader tests bench
	.venv/bin/ruff format --check grader tests bench
	.venv/bin/mypy

bench:
	.venv/bin/python bench/matcher.py
	.venv/bin/python bench/batch.py
	.venv/bin/python bench/judge.py

check:
	.venv/bin/grader check
