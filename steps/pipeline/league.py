"""League-wide figures the minutes and rates models share."""

LEAGUE_TOTAL = 224.0  # a typical game's points total: the pace baseline, and the total when odds give none
TEAM_MINUTES = 240.0  # five players on the floor for 48 minutes
