"""Operator-side code: the graph, planning, the local runner, Argo compilation, the CLI."""
