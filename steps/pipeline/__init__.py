"""The projections pipeline: landing contracts, the steps, and their models."""
