"""The landing contract: what a source snapshot under `landing/` must look like.

A user's real scrapers write the same layout (see docs/landing.md); the ingest steps enforce
these schemas, so a scraper that changes shape fails loudly at ingest, not three steps later.
"""

from __future__ import annotations

from typing import Any

from steps.runtime.contracts import Check, Column, DataFrameSchema

TEAM = Column(str, Check.str_length(2, 4))
PLAYER = Column(str, Check.str_length(1, 32))
UTC_TS = Column("datetime64[ns, UTC]")

INJURY_STATUSES = ["OUT", "DOUBTFUL", "QUESTIONABLE", "PROBABLE"]

SCHEDULE = DataFrameSchema(
    {
        "game_id": Column(str, unique=True),
        "game_date": Column(str, Check.str_matches(r"^\d{4}-\d{2}-\d{2}$")),
        "season": Column("int64", Check.in_range(1946, 2100)),
        "tip_ts": UTC_TS,
        "home_team": TEAM,
        "away_team": TEAM,
    },
    name="landing.schedule",
    strict=True,
)

INJURIES = DataFrameSchema(
    {
        "player_id": PLAYER,
        "team": TEAM,
        "status": Column(str, Check.isin(INJURY_STATUSES)),
        "reported_ts": UTC_TS,
    },
    name="landing.injuries",
    unique=["player_id"],
    strict=True,
)

ODDS = DataFrameSchema(
    {
        "game_id": Column(str, unique=True),
        "spread_home": Column(float, Check.in_range(-40, 40)),
        "total": Column(float, Check.in_range(150, 300)),
    },
    name="landing.odds",
    strict=True,
)

LINEUPS = DataFrameSchema(
    {
        "game_id": Column(str),
        "team": TEAM,
        "player_id": PLAYER,
        "is_starter": Column(bool),
        "confirmed": Column(bool),
    },
    name="landing.lineups",
    unique=["player_id"],
    strict=True,
)

ROSTER = DataFrameSchema(
    {
        "team": TEAM,
        "player_id": PLAYER,
        "player_name": Column(str),
        "position": Column(str, Check.isin(["PG", "SG", "SF", "PF", "C"])),
        "active": Column(bool),
    },
    name="landing.roster",
    unique=["player_id"],
    strict=True,
)

SALARIES = DataFrameSchema(
    {
        "draft_group_id": Column(str),
        "player_id": PLAYER,
        "team": TEAM,
        "position": Column(str),
        "salary": Column("int64", Check.in_range(3000, 15000)),
    },
    name="landing.salaries",
    unique=["draft_group_id", "player_id"],
    strict=True,
)

BOXSCORES = DataFrameSchema(
    {
        "game_id": Column(str),
        "game_date": Column(str),
        "team": TEAM,
        "player_id": PLAYER,
        "started": Column(bool),
        "minutes": Column(float, Check.in_range(0, 60)),
        "pts": Column("int64", Check.ge(0)),
        "reb": Column("int64", Check.ge(0)),
        "ast": Column("int64", Check.ge(0)),
        "stl": Column("int64", Check.ge(0)),
        "blk": Column("int64", Check.ge(0)),
        "tov": Column("int64", Check.ge(0)),
        "fg3m": Column("int64", Check.ge(0)),
        "dk_fp": Column(float),
    },
    name="landing.boxscores",
    unique=["game_id", "player_id"],
    strict=True,
)

# Player tracking, one snapshot per slate once its games are over (optical tracking feeds
# land the morning after): how much each player had the ball.
TRACKING = DataFrameSchema(
    {
        "game_id": Column(str),
        "game_date": Column(str, Check.str_matches(r"^\d{4}-\d{2}-\d{2}$")),
        "team": TEAM,
        "player_id": PLAYER,
        "minutes": Column(float, Check.in_range(0, 60)),
        "touches": Column("int64", Check.ge(0)),
        "usage_pct": Column(float, Check.in_range(0, 100)),
    },
    name="landing.tracking",
    unique=["game_id", "player_id"],
    strict=True,
)

SCHEMAS = {
    "schedule": SCHEDULE,
    "injuries": INJURIES,
    "odds": ODDS,
    "lineups": LINEUPS,
    "roster": ROSTER,
    "salaries": SALARIES,
    "boxscores": BOXSCORES,
    "tracking": TRACKING,
}


def dk_fantasy_points(pts: Any, reb: Any, ast: Any, stl: Any, blk: Any, tov: Any, fg3m: Any) -> Any:
    """DraftKings NBA classic scoring (without double-double bonuses)."""
    return pts + 1.25 * reb + 1.5 * ast + 2.0 * stl + 2.0 * blk - 0.5 * tov + 0.5 * fg3m
