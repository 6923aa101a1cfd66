"""Contracts for what the pipeline's steps write (and so what the next step may read)."""

from __future__ import annotations

from steps.runtime.contracts import Check, Column, DataFrameSchema

_PLAYER = {"player_id": Column(str), "team": Column(str), "game_id": Column(str)}

MINUTES_FEATURES = DataFrameSchema(
    {
        **_PLAYER,
        "position": Column(str),
        "is_home": Column(bool),
        "salary": Column("int64", Check.in_range(3000, 15000)),
        "active_roster": Column(bool),
        "injury_status": Column(
            str, Check.isin(["AVAILABLE", "PROBABLE", "QUESTIONABLE", "DOUBTFUL", "OUT"])
        ),
        "is_out": Column(bool),
        "is_starter": Column(bool),
        "starter_confirmed": Column(bool),
        "spread_team": Column(float, Check.in_range(-40, 40)),
        "total": Column(float, Check.in_range(150, 300)),
        "odds_missing": Column(bool),
        "rest_days": Column(float, Check.in_range(0, 30)),
        "gp": Column("int64", Check.ge(0)),
        "season_min_avg": Column(float, Check.in_range(0, 48)),
        "roll5_min": Column(float, Check.in_range(0, 48)),
        "season_min_sum": Column(float, Check.ge(0)),
        "season_fp_sum": Column(float),
        "roll10_min_sum": Column(float, Check.ge(0)),
        "roll10_fp_sum": Column(float),
        "teammates_out_min": Column(float, Check.ge(0)),
    },
    name="minutes.features",
    unique=["player_id"],
    strict=True,
)

MINUTES_SCORE = DataFrameSchema(
    {
        **_PLAYER,
        "is_out": Column(bool),
        "minutes_mean": Column(float, Check.in_range(0, 48)),
        "minutes_sd": Column(float, Check.in_range(0, 20)),
        "model_run_id": Column(str),
    },
    name="minutes.score",
    unique=["player_id"],
    strict=True,
)

# What tracking.roles promises the rate model: the required columns, one row per player.
TRACKING_ROLES = DataFrameSchema(
    {
        "player_id": Column(str),
        "games": Column("int64", Check.ge(1)),
        "minutes": Column(float, Check.ge(0)),
        "touches_per_min": Column(float, Check.in_range(0, 20)),
        "usage_pct": Column(float, Check.in_range(0, 100)),
        "role": Column(str, Check.isin(["primary", "secondary", "role"])),
    },
    name="tracking.roles",
    unique=["player_id"],
    strict=True,
)

RATES_FEATURES = DataFrameSchema(
    {
        "player_id": Column(str),
        "position": Column(str),
        "rate_prior": Column(float, Check.in_range(0.1, 3)),
        "season_rate_eb": Column(float, Check.in_range(0, 5)),
        "recent_rate_eb": Column(float, Check.in_range(0, 5)),
        "pace": Column(float, Check.in_range(0.6, 1.4)),
        "usage_pct": Column(float, Check.in_range(0, 100), nullable=True),
    },
    name="rates.features",
    unique=["player_id"],
    strict=True,
)

RATES_SCORE = DataFrameSchema(
    {
        "player_id": Column(str),
        "rate_mean": Column(float, Check.in_range(0, 5)),
        "rate_sd": Column(float, Check.in_range(0, 3)),
    },
    name="rates.score",
    unique=["player_id"],
    strict=True,
)

SIM = DataFrameSchema(
    {
        **_PLAYER,
        "fp_mean": Column(float, Check.ge(0)),
        "fp_std": Column(float, Check.ge(0)),
        "fp_p10": Column(float, Check.ge(0)),
        "fp_p50": Column(float, Check.ge(0)),
        "fp_p90": Column(float, Check.ge(0)),
        "minutes_sim_mean": Column(float, Check.in_range(0, 48)),
        "worlds": Column("int64", Check.gt(0)),
    },
    name="sim.run",
    unique=["player_id"],
    strict=True,
)

OWNERSHIP = DataFrameSchema(
    {
        "draft_group_id": Column(str),
        "player_id": Column(str),
        "ownership_pct": Column(float, Check.in_range(0, 100)),
    },
    name="ownership.score",
    unique=["draft_group_id", "player_id"],
    strict=True,
)

UNIFIED = DataFrameSchema(
    {
        "draft_group_id": Column(str),
        **_PLAYER,
        "position": Column(str),
        "salary": Column("int64"),
        "injury_status": Column(str),
        "is_out": Column(bool),
        "minutes_mean": Column(float, Check.in_range(0, 48)),
        "rate_mean": Column(float, Check.in_range(0, 5)),
        "fp_mean": Column(float, Check.ge(0)),
        "fp_std": Column(float, Check.ge(0)),
        "fp_p10": Column(float),
        "fp_p50": Column(float),
        "fp_p90": Column(float),
        "ownership_pct": Column(float, Check.in_range(0, 100)),
        "value": Column(float),
    },
    name="finalize.unified",
    unique=["draft_group_id", "player_id"],
    strict=True,
)

LABELS_MINUTES = DataFrameSchema(
    {
        "player_id": Column(str),
        "played": Column(bool),
        "actual_minutes": Column(float, Check.in_range(0, 60)),
        "actual_fp": Column(float),
    },
    name="labels.minutes",
    unique=["player_id"],
    strict=True,
)
