"""The unified projection table (one row per draft group and player), and its health checks."""

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
from steps.pipeline.slate import group_rows
from steps.runtime.shapes import DRAFT_GROUP
from steps.runtime.step import StepContext, StepSpec

COVERAGE_CRITICAL = 0.90
COVERAGE_WARN = 0.95


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


def health_report(
    unified: pd.DataFrame, roster: pd.DataFrame, injuries: pd.DataFrame, salaries: pd.DataFrame
) -> list[tuple[str, bool, str, str, float]]:
    """(check, passed, severity, detail, value) rows."""
    out_ids = set(injuries.loc[injuries["status"].isin(["OUT", "DOUBTFUL"]), "player_id"])
    active_ids = set(roster.loc[roster["active"], "player_id"])
    expected = set(salaries["player_id"]) & active_ids - out_ids
    projected = set(unified.loc[unified["fp_mean"].notna() & (unified["fp_mean"] > 0), "player_id"])
    coverage = len(expected & projected) / len(expected) if expected else 0.0
    missing = sorted(expected - projected)[:5]
    detail = f"{len(expected & projected)}/{len(expected)} expected active players projected"
    if missing:
        detail += f"; missing e.g. {', '.join(missing)}"
    required = ["fp_mean", "minutes_mean", "rate_mean", "ownership_pct", "salary"]
    nulls = {c: int(unified[c].isna().sum()) for c in required}
    team_minutes = unified.drop_duplicates("player_id").groupby("team")["minutes_mean"].sum()
    off = team_minutes[(team_minutes - 240).abs() > 5]
    return [
        (
            "coverage_critical",
            coverage >= COVERAGE_CRITICAL,
            "critical",
            f"{detail} (needs >= 90%)",
            coverage,
        ),
        (
            "coverage_warn",
            coverage >= COVERAGE_WARN,
            "warn",
            f"{detail} (warns below 95%)",
            coverage,
        ),
        (
            "no_nulls",
            not any(nulls.values()),
            "critical",
            f"nulls in required columns: {nulls}",
            float(sum(nulls.values())),
        ),
        (
            "fp_range",
            bool(unified["fp_mean"].between(0, 120).all()),
            "critical",
            "fp_mean within [0, 120]",
            float(unified["fp_mean"].max() if len(unified) else 0),
        ),
        (
            "minutes_range",
            bool(unified["minutes_mean"].between(0, 48).all()),
            "critical",
            "minutes within [0, 48]",
            float(unified["minutes_mean"].max() if len(unified) else 0),
        ),
        (
            "team_minutes_240",
            off.empty,
            "warn",
            f"teams off 240 projected minutes: {off.round(1).to_dict()}",
            float(len(off)),
        ),
    ]


def run_health(ctx: StepContext) -> None:
    unified = ctx.upstream("finalize.unified", schema=UNIFIED)
    report = health_report(
        unified,
        ctx.upstream("ingest.roster"),
        ctx.upstream("ingest.injuries"),
        group_rows(ctx, ctx.upstream("dk.salaries")),
    )
    for name, passed, severity, detail, value in report:
        ctx.check(name, passed, detail, severity=severity)
        ctx.metric(name, value)
    frame = pd.DataFrame(report, columns=["check", "passed", "severity", "detail", "value"])
    ctx.write("data", frame)
    ctx.metric("coverage", report[0][4])


STEPS = [
    StepSpec(
        asset="finalize.unified",
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
    StepSpec(
        asset="health.checks",
        run=run_health,
        description="Coverage of expected active players (<90% fails, <95% warns), nulls and ranges",
        consumes=("finalize.unified", "ingest.roster", "ingest.injuries", "dk.salaries"),
        shape=DRAFT_GROUP,
    ),
]
