"""Ingest: pick each source's as-of snapshot, enforce the landing contract, pin it to the run.

Copying the selected snapshot under the run prefix makes the run self-contained: what the
downstream steps read can never change, even if a scraper re-lands a snapshot later.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from steps.pipeline.landing import SCHEDULE, SCHEMAS
from steps.runtime import asof
from steps.runtime.shapes import DATE, MONTH
from steps.runtime.step import StepContext, StepSpec

REMEDIATION = {
    "schedule": "land the season schedule (landing/schedule/...) or run `pipeline seed-history`",
    "injuries": (
        "the injury report for this date has no snapshot at or before the as-of time; run the "
        "injuries scraper (or `pipeline seed-history` for demo data), or choose a later --as-of-ts"
    ),
    "lineups": "land a lineups snapshot before the as-of time (projected starters are enough)",
    "roster": "land tonight's roster snapshot (it is written each morning)",
    "salaries": "land the DK salaries for this date's draft groups",
    "odds": "odds are optional; the gap is recorded and neutral lines are used",
}


def run_schedule(ctx: StepContext) -> None:
    """A month's schedule: each day's as-of snapshot (days without games land none)."""
    first = ctx.partition.game_date
    days = [first + timedelta(days=i) for i in range(31) if (first + timedelta(days=i)).month == first.month]
    picked = [c for c in asof.select_each(ctx.store, "schedule", dict.fromkeys(days, ctx.as_of)).values()]
    frames = [
        ctx.source("schedule", game_date=c.game_date, schema=SCHEDULE)
        for c in picked
        if not isinstance(c, asof.Gap)
    ]
    if not frames:  # no games this month as of the run: the contract's fail policy decides
        ctx.source("schedule", game_date=first, schema=SCHEDULE)
    frame = pd.concat([f for f in frames if f is not None], ignore_index=True)
    ctx.write("data", frame.sort_values(["game_date", "game_id"]), unique=("game_id",))
    ctx.metric("games", len(frame))
    ctx.metric("days", len(frames))


def _ingest(source: str) -> StepSpec:
    def run(ctx: StepContext) -> None:
        frame = ctx.source(source, schema=SCHEMAS[source])
        if frame is None:  # an allowed gap: an empty frame keeps the contract for readers
            columns = SCHEMAS[source].columns
            frame = pd.DataFrame({c: pd.Series(dtype=str(col.dtype)) for c, col in columns.items()})
            ctx.metric("gap", 1)
        ctx.write("data", frame)
        ctx.metric("rows", len(frame))

    asset = "dk.salaries" if source == "salaries" else f"ingest.{source}"
    monthly = source == "schedule"
    return StepSpec(
        asset=asset,
        run=run_schedule if monthly else run,
        description=(
            "The month's schedule, each day as of the run, validated against the landing contract"
            if monthly
            else f"As-of snapshot of the {source} source, validated against the landing contract"
        ),
        sources=(source,),
        shape=MONTH if monthly else DATE,
        concurrency=(f"source.{source}",),
        gap_policy={source: "proceed" if source == "odds" else "fail"},
        remediation={source: REMEDIATION[source]},
    )


STEPS = [_ingest(s) for s in ("schedule", "injuries", "odds", "lineups", "roster", "salaries")]
