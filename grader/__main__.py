"""`python -m grader` runs the CLI."""

from .cli import main

main()
