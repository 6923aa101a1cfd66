"""Argo: the DAG compiled with Hera, rendered into the chart, and the cluster it is submitted to."""
