"""The DAG model: the steps' graph, how a range is planned, catch-up, config and ids."""
