"""Projected ownership per draft group: a softmax over value and upside, summing to 800%."""

from __future__ import annotations

import numpy as np
import pandas as pd

from steps.pipeline.contracts import OWNERSHIP, SIM
from steps.pipeline.draft_group import group_rows
from steps.runtime.shapes import DRAFT_GROUP
from steps.runtime.step import StepContext, StepSpec

ROSTER_SLOTS = 8
VALUE_WEIGHT = 0.9
POINTS_WEIGHT = 0.06


def score_ownership(sim: pd.DataFrame, salaries: pd.DataFrame) -> pd.DataFrame:
    frame = salaries[["draft_group_id", "player_id", "salary"]].merge(
        sim[["player_id", "fp_mean"]], on="player_id", how="left"
    )
    frame["fp_mean"] = frame["fp_mean"].fillna(0.0)
    value = frame["fp_mean"] / (frame["salary"] / 1000.0)
    logit = VALUE_WEIGHT * value + POINTS_WEIGHT * frame["fp_mean"]
    frame["w"] = np.where(frame["fp_mean"] > 0, np.exp(logit - logit.max()), 0.0)
    parts = []
    for _, group in frame.groupby("draft_group_id", sort=True):
        share = group["w"] / group["w"].sum() * ROSTER_SLOTS * 100 if group["w"].sum() > 0 else group["w"] * 0
        # Nobody is in more than every lineup; the excess goes to the rest, in proportion.
        for _ in range(5):
            over = share > 100
            if not over.any():
                break
            excess = float((share[over] - 100).sum())
            share[over] = 100.0
            room = share[~over]
            share[~over] = room + excess * room / max(float(room.sum()), 1e-9)
        parts.append(group.assign(ownership_pct=share.clip(0, 100).round(4)))
    out = pd.concat(parts) if parts else frame.assign(ownership_pct=0.0)
    return out[["draft_group_id", "player_id", "ownership_pct"]].reset_index(drop=True)


def run(ctx: StepContext) -> None:
    sim = ctx.upstream("sim.run", schema=SIM)
    salaries = group_rows(ctx, ctx.upstream("dk.salaries"))
    frame = score_ownership(sim, salaries)
    ctx.write("data", frame, schema=OWNERSHIP, unique=("draft_group_id", "player_id"))
    ctx.metric("draft_groups", frame["draft_group_id"].nunique())


STEPS = [
    StepSpec(
        asset="ownership.score",
        run=run,
        description="Projected ownership % per player and draft group",
        consumes=("sim.run", "dk.salaries"),
        shape=DRAFT_GROUP,
    )
]
