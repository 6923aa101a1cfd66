"""The step runtime: partitions, the store, manifests, as-of selection, pointers, events."""
