"""A synthetic NBA data source for demos, tests and benchmarks: a generated season and the snapshots it lands."""
