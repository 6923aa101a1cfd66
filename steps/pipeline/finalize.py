"""The unified projection table: one row per draft group and player."""

from __future__ import annotations

import pandas as pd

from steps.pipeline.contracts import (
    MINUTES_FEATURES,
    MINUTES_SCORE,
    OWNERSHIP,
    RATES_SCORE,
    SIM,
    UNIFIED,
)
from steps.pipeline.draft_group import group_rows
from steps.runtime.shapes import DRAFT_GROUP
from steps.runtime.step import StepContext, StepSpec

# The published table: its per-draft-group pointers are what "current" means for a slate.
PUBLISHED_ASSET = "finalize.unified"


def unify(
    salaries: pd.DataFrame,
    features: pd.DataFrame,
    minutes: pd.DataFrame,
    rates: pd.DataFrame,
    sim: pd.DataFrame,
    ownership: pd.DataFrame,
) -> pd.DataFrame:
    frame = (
        salaries[["draft_group_id", "player_id", "salary"]]
        .merge(
            features[["player_id", "team", "game_id", "position", "injury_status", "is_out"]],
            on="player_id",
        )
        .merge(minutes[["player_id", "minutes_mean"]], on="player_id", how="left")
        .merge(rates[["player_id", "rate_mean"]], on="player_id", how="left")
        .merge(
            sim[["player_id", "fp_mean", "fp_std", "fp_p10", "fp_p50", "fp_p90"]],
            on="player_id",
            how="left",
        )
        .merge(ownership, on=["draft_group_id", "player_id"], how="left")
    )
    frame["salary"] = frame["salary"].astype("int64")
    frame["value"] = (frame["fp_mean"] / (frame["salary"] / 1000.0)).round(6)
    columns = list(UNIFIED.columns)
    return frame[columns].sort_values(["draft_group_id", "player_id"]).reset_index(drop=True)


def run_finalize(ctx: StepContext) -> None:
    frame = unify(
        group_rows(ctx, ctx.upstream("dk.salaries")),
        ctx.upstream("minutes.features", schema=MINUTES_FEATURES),
        ctx.upstream("minutes.score", schema=MINUTES_SCORE),
        ctx.upstream("rates.score", schema=RATES_SCORE),
        ctx.upstream("sim.run", schema=SIM),
        ctx.upstream("ownership.score", schema=OWNERSHIP),
    )
    ctx.write("data", frame, schema=UNIFIED, unique=("draft_group_id", "player_id"))
    ctx.metric("rows", len(frame))
    ctx.metric("players", frame["player_id"].nunique())


STEPS = [
    StepSpec(
        asset=PUBLISHED_ASSET,
        run=run_finalize,
        description="The merged projection table: minutes, rates, distribution, ownership, salary",
        consumes=(
            "dk.salaries",
            "minutes.features",
            "minutes.score",
            "rates.score",
            "sim.run",
            "ownership.score",
        ),
        shape=DRAFT_GROUP,
    ),
]
