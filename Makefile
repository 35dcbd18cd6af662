.PHONY: install test lint bench check

install:
	python3 -m venv .venv && .venv/bin/pip install -e ".[dev]"

test:
	.venv/bin/pytest -q

lint:
	.venv/bin/ruff check grader tests bench hatch_build.py
	.venv/bin/ruff format --check grader tests bench hatch_build.py
	.venv/bin/mypy

# Benchmarks run what users install: `pip install .` (compiled with mypyc), in .venv-bench.
bench:
	test -x .venv-bench/bin/python || python3 -m venv .venv-bench
	.venv-bench/bin/pip install -q ".[test]"   # a local path is rebuilt (and compiled) on every install
	.venv-bench/bin/python bench/matcher.py
	.venv-bench/bin/python bench/batch.py
	.venv-bench/bin/python bench/judge.py

check:
	.venv/bin/grader check
