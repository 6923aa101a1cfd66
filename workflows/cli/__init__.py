"""The `pipeline` command: one Typer app, with each command group registering itself on import."""

# isort: off
# Registration order is the order `pipeline --help` lists: running first, then reading back.
from workflows.cli import ranges, demo, inspect, pointers, argo
from workflows.cli.app import app

# isort: on

__all__ = ["app", "argo", "demo", "inspect", "pointers", "ranges"]
