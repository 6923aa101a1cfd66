"""Tracking: each settled slate's player-tracking feed (`tracking.scrape`), and season-to-date
player roles over a window of those slates (`tracking.roles`), which feed the rate model."""

from __future__ import annotations

import pandas as pd

from steps.pipeline.contracts import TRACKING_ROLES
from steps.pipeline.landing import TRACKING
from steps.pipeline.settle import settled_or_not_due
from steps.runtime.shapes import SEASON_TO_DATE, SETTLED_DATE, Input
from steps.runtime.step import StepContext, StepSpec

# Usage share of team plays while on court: who runs the offence.
PRIMARY_USAGE = 26.0
SECONDARY_USAGE = 19.0


def run_scrape(ctx: StepContext) -> None:
    settle = settled_or_not_due(ctx.game_date, "tracking feeds")
    frame = ctx.source("tracking", as_of=settle, schema=TRACKING)
    if frame is None:  # an allowed gap: the window goes on without this slate
        frame = pd.DataFrame({c: pd.Series(dtype=str(col.dtype)) for c, col in TRACKING.columns.items()})
        ctx.metric("gap", 1)
    ctx.write("data", frame, unique=("game_id", "player_id"))
    ctx.metric("players", len(frame))


def player_roles(tracking: pd.DataFrame) -> pd.DataFrame:
    """Per player over the window: games, minutes, touches per minute, minutes-weighted usage,
    and a role from the usage."""
    if tracking.empty:
        return pd.DataFrame({c: pd.Series(dtype=str(col.dtype)) for c, col in TRACKING_ROLES.columns.items()})
    weighted = tracking.assign(usage_min=tracking["usage_pct"] * tracking["minutes"])
    per = weighted.groupby("player_id").agg(
        games=("game_id", "nunique"),
        minutes=("minutes", "sum"),
        touches=("touches", "sum"),
        usage_min=("usage_min", "sum"),
    )
    minutes = per["minutes"].clip(lower=1e-9)
    usage = per["usage_min"] / minutes
    role = pd.Series("role", index=per.index)
    role[usage >= SECONDARY_USAGE] = "secondary"
    role[usage >= PRIMARY_USAGE] = "primary"
    return pd.DataFrame(
        {
            "player_id": per.index.astype(str),
            "games": per["games"].astype("int64").to_numpy(),
            "minutes": per["minutes"].round(4).to_numpy(),
            "touches_per_min": (per["touches"] / minutes).round(6).to_numpy(),
            "usage_pct": usage.round(4).to_numpy(),
            "role": role.to_numpy(),
        }
    ).reset_index(drop=True)


def run_roles(ctx: StepContext) -> None:
    tracking = ctx.upstream("tracking.scrape", schema=TRACKING)
    frame = player_roles(tracking)
    ctx.write("data", frame, schema=TRACKING_ROLES, unique=("player_id",))
    ctx.metric("slates", float(tracking["game_date"].nunique()) if len(tracking) else 0.0)
    ctx.metric("players", len(frame))


STEPS = [
    StepSpec(
        asset="tracking.scrape",
        run=run_scrape,
        description="The slate's player-tracking feed, as of its settle time (post-slate)",
        sources=("tracking",),
        shape=SETTLED_DATE,
        concurrency=("source.tracking",),
        gap_policy={"tracking": "proceed"},
        remediation={"tracking": "the tracking feed lands the morning after the slate"},
        may_skip=True,  # not due before the slate settles
    ),
    StepSpec(
        asset="tracking.roles",
        run=run_roles,
        description="Season-to-date player roles (usage, touches) from every settled slate before the date",
        consumes=(Input("tracking.scrape", "window"),),
        shape=SEASON_TO_DATE,
    ),
]
