"""The typer command-line interface: thin, it parses and renders, the work is elsewhere."""
