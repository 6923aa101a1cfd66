"""`python -m workflows.cli`: the same app as the `pipeline` script."""

from workflows.cli import app

app()
