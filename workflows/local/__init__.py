"""The local runner: the same DAG run on this machine, with warm workers."""
