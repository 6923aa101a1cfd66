"""Per-minute fantasy-point rates: empirical-Bayes shrinkage to a positional prior, with pace."""

from __future__ import annotations

import numpy as np
import pandas as pd

from steps.pipeline.contracts import MINUTES_FEATURES, RATES_FEATURES, RATES_SCORE, TRACKING_ROLES
from steps.pipeline.league import LEAGUE_TOTAL
from steps.runtime.step import StepContext, StepSpec

PRIOR_MINUTES = 120.0  # how many minutes of evidence the prior is worth
RECENT_WEIGHT = 0.4
USAGE_SLOPE = 0.95 / 20.0  # fp per minute per usage point, at the league's average usage
USAGE_WEIGHT = 0.5


def rate_features(features: pd.DataFrame, roles: pd.DataFrame | None = None) -> pd.DataFrame:
    played = features[features["season_min_sum"] > 0]
    league = float(played["season_fp_sum"].sum() / played["season_min_sum"].sum()) if len(played) else 0.95
    by_pos = played.groupby("position")[["season_fp_sum", "season_min_sum"]].sum()
    pos_rate = (by_pos["season_fp_sum"] / by_pos["season_min_sum"]).to_dict() if len(by_pos) else {}
    prior = features["position"].map(pos_rate).astype(float).fillna(league).clip(0.3, 2.0)
    usage = (
        features["player_id"].map(roles.set_index("player_id")["usage_pct"])
        if roles is not None and len(roles)
        else None
    )
    if usage is not None:
        # A player's season-to-date usage says how much of the offence runs through them: it
        # moves the prior toward a usage-implied rate, where tracking has seen them play.
        implied = (USAGE_SLOPE * usage.astype(float)).clip(0.3, 2.0)
        prior = prior.where(usage.isna(), (1 - USAGE_WEIGHT) * prior + USAGE_WEIGHT * implied)
    season = (features["season_fp_sum"] + PRIOR_MINUTES * prior) / (
        features["season_min_sum"] + PRIOR_MINUTES
    )
    recent = (features["roll10_fp_sum"] + PRIOR_MINUTES * season) / (
        features["roll10_min_sum"] + PRIOR_MINUTES
    )
    return pd.DataFrame(
        {
            "player_id": features["player_id"],
            "position": features["position"],
            "rate_prior": prior.round(6),
            "season_rate_eb": season.clip(0, 5).round(6),
            "recent_rate_eb": recent.clip(0, 5).round(6),
            "pace": (features["total"] / LEAGUE_TOTAL).clip(0.6, 1.4).round(6),
            "usage_pct": (
                usage.astype(float).round(4) if usage is not None else pd.Series(np.nan, index=features.index)
            ),
        }
    )


def score_rates(rf: pd.DataFrame) -> pd.DataFrame:
    base = (1 - RECENT_WEIGHT) * rf["season_rate_eb"] + RECENT_WEIGHT * rf["recent_rate_eb"]
    mean = (base * rf["pace"]).clip(0, 5)
    return pd.DataFrame(
        {
            "player_id": rf["player_id"],
            "rate_mean": mean.round(6),
            # Game-to-game spread of fp/min is about a quarter of the rate in this league.
            "rate_sd": (np.maximum(mean, 0.05) * 0.25).round(6),
        }
    )


def run_features(ctx: StepContext) -> None:
    features = ctx.upstream("minutes.features", schema=MINUTES_FEATURES)
    roles = ctx.upstream("tracking.roles", schema=TRACKING_ROLES)
    frame = rate_features(features, roles)
    ctx.write("data", frame, schema=RATES_FEATURES, unique=("player_id",))
    ctx.metric("with_tracking", float(frame["usage_pct"].notna().mean()) if len(frame) else 0.0)


def run_score(ctx: StepContext) -> None:
    rf = ctx.upstream("rates.features", schema=RATES_FEATURES)
    frame = score_rates(rf)
    ctx.write("data", frame, schema=RATES_SCORE, unique=("player_id",))
    ctx.metric("mean_rate", float(frame["rate_mean"].mean()) if len(frame) else 0.0)


STEPS = [
    StepSpec(
        asset="rates.features",
        run=run_features,
        description="Season and recent per-minute rates shrunk to a positional prior; pace from totals",
        consumes=("minutes.features", "tracking.roles"),
    ),
    StepSpec(
        asset="rates.score",
        run=run_score,
        description="Projected fantasy points per minute (mean, sd)",
        consumes=("rates.features",),
    ),
]
