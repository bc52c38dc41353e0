"""One module per command group; each ends with `COMMANDS = [...]` (see `studbook_cli`)."""
