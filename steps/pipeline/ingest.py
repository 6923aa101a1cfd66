"""Ingest: pick each source's as-of snapshot, enforce the landing contract, pin it to the run.

Copying the selected snapshot under the run prefix makes the run self-contained: what the
downstream steps read can never change, even if a scraper re-lands a snapshot later.
"""

from __future__ import annotations

import pandas as pd

from steps.pipeline.landing import SCHEMAS
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
    keys = ("game_date", "run_as_of_ts", "run_id")
    return StepSpec(
        asset=asset,
        run=run,
        description=f"As-of snapshot of the {source} source, validated against the landing contract",
        sources=(source,),
        partition_keys=(*keys, "draft_group_id") if source == "salaries" else keys,
        concurrency=(f"source.{source}",),
        gap_policy={source: "proceed" if source == "odds" else "fail"},
        remediation={source: REMEDIATION[source]},
    )


STEPS = [_ingest(s) for s in ("schedule", "injuries", "odds", "lineups", "roster", "salaries")]
