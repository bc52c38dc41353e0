"""`python -m studbook_cli ...` runs the `studbook` command."""

from .main import main

main()
