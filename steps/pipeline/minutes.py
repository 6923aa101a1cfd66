"""Minutes: features as of the run, a least-squares model trained up to a cutoff, scoring.

The model is a versioned model run (`runs/minutes.train/...`, with its own pointer
`models/minutes/current_run.json` moved by promote); scoring records which run it used.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd

from steps.pipeline.boxscore_features import history_as_of, per_game_history, rest_days, salary_minutes_prior
from steps.pipeline.contracts import MINUTES_FEATURES, MINUTES_SCORE
from steps.pipeline.landing import BOXSCORES
from steps.pipeline.league import LEAGUE_TOTAL, TEAM_MINUTES
from steps.runtime.partition import season_start
from steps.runtime.shapes import SEASON_TO_DATE, Input
from steps.runtime.step import Resources, StepContext, StepSpec

MODEL_FEATURES = [
    "season_min_avg",
    "roll5_min",
    "started",
    "started_x_avg",
    "back_to_back",
    "teammates_out_min",
]
MIN_TRAIN_ROWS = 300
OUT_STATUSES = {"OUT", "DOUBTFUL"}


def box_history(ctx: StepContext) -> pd.DataFrame:
    """This season's box scores before the slate, each as published by `run_as_of_ts`."""
    return ctx.source_history("boxscores", since=season_start(ctx.game_date), schema=BOXSCORES)


def design(frame: pd.DataFrame, started: pd.Series) -> np.ndarray:
    x = pd.DataFrame(
        {
            "season_min_avg": frame["season_min_avg"].astype(float),
            "roll5_min": frame["roll5_min"].astype(float),
            "started": started.astype(float),
            "back_to_back": (frame["rest_days"] <= 1).astype(float),
            "teammates_out_min": frame["teammates_out_min"].astype(float),
        }
    )
    x["started_x_avg"] = x["started"] * x["season_min_avg"]
    return np.column_stack([np.ones(len(x)), x[MODEL_FEATURES].to_numpy()])


# ---- minutes.features -------------------------------------------------------------------
def build_features(ctx: StepContext) -> pd.DataFrame:
    month = ctx.upstream("ingest.schedule")
    schedule = month[month["game_date"] == ctx.game_date.isoformat()]
    salaries = ctx.upstream("dk.salaries")
    roster = ctx.upstream("ingest.roster").set_index("player_id")
    injuries = ctx.upstream("ingest.injuries").set_index("player_id")
    odds = ctx.upstream("ingest.odds").set_index("game_id")
    lineups = ctx.upstream("ingest.lineups").set_index("player_id")
    box = box_history(ctx)

    teams = pd.concat(
        [
            schedule.assign(team=schedule["home_team"], is_home=True),
            schedule.assign(team=schedule["away_team"], is_home=False),
        ]
    )[["team", "game_id", "is_home"]]
    pool = (
        salaries.sort_values(["player_id", "draft_group_id"])
        .drop_duplicates("player_id")[["player_id", "team", "position", "salary"]]
        .merge(teams, on="team", how="inner")
    )
    pool["salary"] = pool["salary"].astype("int64")
    pool["active_roster"] = pool["player_id"].map(roster["active"]).fillna(False).astype(bool)
    pool["injury_status"] = pool["player_id"].map(injuries["status"]).fillna("AVAILABLE").astype(str)
    pool["is_out"] = pool["injury_status"].isin(OUT_STATUSES) | ~pool["active_roster"]
    pool["is_starter"] = pool["player_id"].map(lineups["is_starter"]).fillna(False).astype(bool)
    pool["starter_confirmed"] = pool["player_id"].map(lineups["confirmed"]).fillna(False).astype(bool)
    spread_home = (
        pool["game_id"].map(odds["spread_home"]) if len(odds) else pd.Series(np.nan, index=pool.index)
    )
    total = pool["game_id"].map(odds["total"]) if len(odds) else pd.Series(np.nan, index=pool.index)
    pool["odds_missing"] = spread_home.isna()
    pool["spread_team"] = np.where(pool["is_home"], spread_home, -spread_home)
    pool["spread_team"] = pool["spread_team"].astype(float).fillna(0.0)
    pool["total"] = total.astype(float).fillna(LEAGUE_TOTAL)

    hist = history_as_of(box)
    pool = pool.merge(hist, on="player_id", how="left")
    pool["gp"] = pool["gp"].fillna(0).astype("int64")
    prior = salary_minutes_prior(pool["salary"])
    pool["season_min_avg"] = pool["season_min_avg"].astype(float).fillna(prior)
    pool["roll5_min"] = pool["roll5_min"].astype(float).fillna(pool["season_min_avg"])
    for column in ("season_min_sum", "season_fp_sum", "roll10_min_sum", "roll10_fp_sum"):
        pool[column] = pool[column].astype(float).fillna(0.0)
    pool["rest_days"] = rest_days(ctx.game_date.isoformat(), pool["last_game_date"])
    out_minutes = pool["season_min_avg"].where(pool["is_out"] & (pool["gp"] > 0), 0.0)
    pool["teammates_out_min"] = out_minutes.groupby(pool["team"]).transform("sum") - out_minutes
    pool = pool.drop(columns=["last_game_date"]).sort_values("player_id").reset_index(drop=True)
    ctx.metric("players", len(pool))
    ctx.metric("odds_missing_share", float(pool["odds_missing"].mean()) if len(pool) else 0.0)
    return pool


def run_features(ctx: StepContext) -> None:
    ctx.write("data", build_features(ctx), schema=MINUTES_FEATURES, unique=("player_id",))


# ---- minutes.train ----------------------------------------------------------------------
def _teammates_out_history(box: pd.DataFrame) -> pd.DataFrame:
    """For each (team, date): minutes-per-game of teammates who had played but sat out."""
    games = box[["player_id", "team", "game_date", "minutes"]].copy()
    games["date"] = pd.to_datetime(games["game_date"])
    games = games.sort_values(["date", "player_id"])
    g = games.groupby("player_id")
    games["cum_min"] = g["minutes"].cumsum()
    games["cum_gp"] = g.cumcount() + 1
    team_dates = games[["team", "date"]].drop_duplicates()
    members = games[["team", "player_id"]].drop_duplicates()
    grid = team_dates.merge(members, on="team").sort_values(["date", "player_id"])
    before = pd.merge_asof(
        grid,
        games[["player_id", "date", "cum_min", "cum_gp"]],
        on="date",
        by="player_id",
        allow_exact_matches=False,
    )
    played = set(zip(games["player_id"], games["date"], strict=True))
    sat = ~pd.Series(
        [(p, d) in played for p, d in zip(before["player_id"], before["date"], strict=True)],
        index=before.index,
    )
    before["avg"] = (before["cum_min"] / before["cum_gp"]).where(sat & before["cum_gp"].notna(), 0.0)
    out = before.groupby(["team", "date"])["avg"].sum().rename("teammates_out_min").reset_index()
    out["game_date"] = out["date"].dt.strftime("%Y-%m-%d")
    return out[["team", "game_date", "teammates_out_min"]]


def fit_minutes_model(box: pd.DataFrame, cutoff: date) -> dict[str, object]:
    rows = per_game_history(box)
    if not rows.empty:
        rows = rows.merge(_teammates_out_history(box), on=["team", "game_date"], how="left")
        rows["rest_days"] = rest_days(rows["game_date"], rows["last_game_date"])
        rows = rows[(rows["gp"] >= 3) & (rows["minutes"] > 0)].dropna(subset=["season_min_avg", "roll5_min"])
    if len(rows) < MIN_TRAIN_ROWS:
        prior = [0.0, 1.0] + [0.0] * (len(MODEL_FEATURES) - 1)
        return {
            "model": "minutes-ols-v1",
            "kind": "prior",
            "features": MODEL_FEATURES,
            "coef": prior,
            "resid_sd": 6.0,
            "n_train": len(rows),
            "cutoff": cutoff.isoformat(),
        }
    x = design(rows, rows["started"])
    y = rows["minutes"].to_numpy(dtype=float)
    # A light ridge keeps early-season fits stable; the intercept is not penalised.
    penalty = np.eye(x.shape[1]) * 5.0
    penalty[0, 0] = 0.0
    coef = np.linalg.solve(x.T @ x + penalty, x.T @ y)
    resid = y - x @ coef
    return {
        "model": "minutes-ols-v1",
        "kind": "fitted",
        "features": MODEL_FEATURES,
        "coef": [round(float(c), 8) for c in coef],
        "resid_sd": round(float(resid.std()), 6),
        "train_mae": round(float(np.abs(resid).mean()), 6),
        "n_train": len(rows),
        "cutoff": cutoff.isoformat(),
    }


def run_train(ctx: StepContext) -> None:
    box = box_history(ctx)
    model = fit_minutes_model(box, ctx.game_date - timedelta(days=1))
    model["trained_as_of"] = ctx.partition.as_of_iso()
    ctx.write_bytes("model", json.dumps(model, sort_keys=True, indent=2).encode())
    ctx.metric("n_train", float(model["n_train"]))  # type: ignore[arg-type]
    if "train_mae" in model:
        ctx.metric("train_mae", float(model["train_mae"]))  # type: ignore[arg-type]
    ctx.check(
        "model_fitted",
        model["kind"] == "fitted",
        f"{model['kind']} model on {model['n_train']} rows",
        severity="warn",
    )


# ---- minutes.score ----------------------------------------------------------------------
def score_minutes(features: pd.DataFrame, model: dict[str, object]) -> pd.DataFrame:
    coef = np.asarray(model["coef"], dtype=float)
    pred = np.clip(design(features, features["is_starter"]) @ coef, 0, 44)
    pred = np.where(features["is_out"], 0.0, pred)
    frame = features[["player_id", "team", "game_id", "is_out"]].copy()
    frame["minutes_mean"] = pred
    # Minutes a team does not give to its absent players go to those who play.
    for _ in range(3):
        team_sum = frame.groupby("team")["minutes_mean"].transform("sum")
        scale = np.where(team_sum > 0, TEAM_MINUTES / team_sum.clip(lower=1e-9), 0.0)
        frame["minutes_mean"] = np.clip(frame["minutes_mean"] * scale, 0, 44)
    resid_sd = float(model["resid_sd"])  # type: ignore[arg-type]
    questionable = features["injury_status"].eq("QUESTIONABLE").to_numpy()
    sd = np.where(questionable, resid_sd * 1.4, resid_sd)
    frame["minutes_sd"] = np.where(features["is_out"], 0.0, np.minimum(sd, 19.0))
    frame["minutes_mean"] = frame["minutes_mean"].round(4)
    frame["minutes_sd"] = frame["minutes_sd"].round(4)
    return frame


def run_score(ctx: StepContext) -> None:
    features = ctx.upstream("minutes.features", schema=MINUTES_FEATURES)
    raw, model_manifest = ctx.upstream_bytes("minutes.train", "model")
    frame = score_minutes(features, json.loads(raw))
    frame["model_run_id"] = model_manifest.partition.run_id
    ctx.write("data", frame, schema=MINUTES_SCORE, unique=("player_id",))
    ctx.metric("players", len(frame))
    ctx.metric("projected_minutes_total", float(frame["minutes_mean"].sum()))


STEPS = [
    StepSpec(
        asset="minutes.features",
        run=run_features,
        description="Per-player minutes features as of the run (history strictly before the slate)",
        consumes=(
            Input("ingest.schedule", "month"),
            "dk.salaries",
            "ingest.roster",
            "ingest.injuries",
            "ingest.odds",
            "ingest.lineups",
        ),
        sources=("boxscores",),
        concurrency=("source.boxscores",),
    ),
    StepSpec(
        asset="minutes.train",
        run=run_train,
        description="Least-squares minutes model trained on this season's games before the cutoff",
        sources=("boxscores",),
        shape=SEASON_TO_DATE,  # trained on the season's games before the slate
        concurrency=("stage.train", "source.boxscores"),
        resources=Resources(cpu="500m", memory="1Gi", cpu_limit="1", memory_limit="2Gi"),
    ),
    StepSpec(
        asset="minutes.score",
        run=run_score,
        description="Projected minutes (mean, sd) per player, renormalised to 240 per team",
        consumes=("minutes.features", "minutes.train"),
    ),
]
