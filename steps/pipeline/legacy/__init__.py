"""Stand-ins for a team's existing scripts, run as black boxes by the `script` step kind."""
