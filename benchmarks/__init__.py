"""Benchmarks (`make bench`): the figures in docs/benchmarks.md, measured side by side."""
