"""Post-slate labels (actual minutes and fantasy points) and projection accuracy.

Labels read box scores as of the slate's settle time (noon ET the next day), not the run's
pre-tip as-of: they describe what happened, and before that time they are not due.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from steps.pipeline.contracts import LABELS_MINUTES, MINUTES_FEATURES, UNIFIED
from steps.pipeline.landing import BOXSCORES
from steps.pipeline.settle import settled_or_not_due
from steps.runtime.shapes import SETTLED_DATE, Input
from steps.runtime.step import StepContext, StepSpec


def run_boxscores(ctx: StepContext) -> None:
    settle = settled_or_not_due(ctx.game_date, "box scores")
    box = ctx.source("boxscores", as_of=settle, schema=BOXSCORES)
    assert box is not None  # the policy for boxscores is fail
    ctx.write("data", box, unique=("game_id", "player_id"))
    ctx.metric("rows", len(box))


def run_minutes(ctx: StepContext) -> None:
    """Actual minutes and fantasy points of everyone in the box score. Not run-scoped: which
    players a run projected is the accuracy step's business (a projected player absent here
    sat, and counts as 0)."""
    box = ctx.upstream("labels.boxscores", schema=BOXSCORES)
    frame = pd.DataFrame(
        {
            "player_id": box["player_id"],
            "played": box["minutes"] > 0,
            "actual_minutes": box["minutes"].astype(float),
            "actual_fp": box["dk_fp"].astype(float),
        }
    ).sort_values("player_id")
    ctx.write("data", frame, schema=LABELS_MINUTES, unique=("player_id",))
    ctx.metric("played", float(frame["played"].sum()))


def accuracy_table(unified: pd.DataFrame, labels: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    proj = unified.drop_duplicates("player_id")[["player_id", "fp_mean", "minutes_mean"]]
    # A projected player missing from the box score sat: 0 minutes, 0 points.
    frame = proj.merge(labels, on="player_id", how="left")
    frame["played"] = frame["played"].astype("boolean").fillna(False).astype(bool)
    frame["actual_minutes"] = frame["actual_minutes"].fillna(0.0)
    frame["actual_fp"] = frame["actual_fp"].fillna(0.0)
    frame = frame.merge(
        features[["player_id", "gp", "season_min_sum", "season_fp_sum"]], on="player_id", how="left"
    )
    # The naive baseline: season-average minutes times season-average rate, ignoring news.
    has = frame["gp"] > 0
    avg_min = np.where(has, frame["season_min_sum"] / frame["gp"].clip(lower=1), np.nan)
    avg_rate = np.where(
        frame["season_min_sum"] > 0,
        frame["season_fp_sum"] / frame["season_min_sum"].clip(lower=1e-9),
        np.nan,
    )
    fallback_min = float(np.nanmean(avg_min)) if has.any() else 0.0
    fallback_rate = float(np.nanmean(avg_rate)) if has.any() else 0.0
    frame["baseline_minutes"] = np.where(has, avg_min, fallback_min)
    frame["baseline_fp"] = frame["baseline_minutes"] * np.where(has, avg_rate, fallback_rate)
    return frame[
        [
            "player_id",
            "fp_mean",
            "minutes_mean",
            "baseline_fp",
            "baseline_minutes",
            "actual_fp",
            "actual_minutes",
            "played",
        ]
    ]


def error_metrics(table: pd.DataFrame) -> dict[str, float]:
    def mae(a: pd.Series, b: pd.Series) -> float:
        return float((a - b).abs().mean())

    def rmse(a: pd.Series, b: pd.Series) -> float:
        return float(np.sqrt(((a - b) ** 2).mean()))

    return {
        "n": float(len(table)),
        "mae_fp": mae(table["fp_mean"], table["actual_fp"]),
        "rmse_fp": rmse(table["fp_mean"], table["actual_fp"]),
        "mae_minutes": mae(table["minutes_mean"], table["actual_minutes"]),
        "rmse_minutes": rmse(table["minutes_mean"], table["actual_minutes"]),
        "baseline_mae_fp": mae(table["baseline_fp"], table["actual_fp"]),
        "baseline_mae_minutes": mae(table["baseline_minutes"], table["actual_minutes"]),
    }


def run_accuracy(ctx: StepContext) -> None:
    table = accuracy_table(
        ctx.upstream("finalize.unified", schema=UNIFIED),
        ctx.upstream("labels.minutes", schema=LABELS_MINUTES),
        ctx.upstream("minutes.features", schema=MINUTES_FEATURES),
    )
    ctx.write("data", table, unique=("player_id",))
    for name, value in error_metrics(table).items():
        ctx.metric(name, value)


STEPS = [
    StepSpec(
        asset="labels.boxscores",
        run=run_boxscores,
        description="Final box scores for the slate, as of its settle time (post-slate)",
        sources=("boxscores",),
        concurrency=("source.boxscores",),
        remediation={"boxscores": "box scores land the morning after the slate; rerun after they do"},
        shape=SETTLED_DATE,
        may_skip=True,  # not due before the slate settles
    ),
    StepSpec(
        asset="labels.minutes",
        run=run_minutes,
        description="Actual minutes and fantasy points of every player in the box score",
        consumes=("labels.boxscores",),
        shape=SETTLED_DATE,
    ),
    StepSpec(
        asset="accuracy",
        run=run_accuracy,
        description="MAE/RMSE of the run's projections (all draft groups) against a naive baseline",
        consumes=(
            Input("finalize.unified", "draft_groups"),
            Input("labels.minutes", after_as_of=True),  # the results settle after the run
            "minutes.features",
        ),
    ),
]
