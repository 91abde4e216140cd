"""The `qkt` command line: thin typer commands over the DSL, the worker and the control plane."""
