"""Monte Carlo over `worlds` worlds: minutes x rate x a per-game pace shock, vectorised.

Seeded from (game_date, run_id, profile) so a run is reproducible bit for bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from steps.pipeline.contracts import MINUTES_SCORE, RATES_SCORE, SIM
from steps.pipeline.sim_params import DEFAULT_WORLDS, profile_scale, stable_seed
from steps.runtime.step import Resources, StepContext, StepSpec

PACE_SD = 0.06


def simulate(
    minutes: pd.DataFrame, rates: pd.DataFrame, *, worlds: int, seed: int, scale: float = 1.0
) -> pd.DataFrame:
    """Player fantasy-point distributions over `worlds` simulated games."""
    frame = minutes.merge(rates, on="player_id", how="left", validate="one_to_one")
    if frame["rate_mean"].isna().any():
        missing = frame.loc[frame["rate_mean"].isna(), "player_id"].head(5).tolist()
        raise ValueError(f"rates missing for players with minutes: {missing}")
    rng = np.random.default_rng(seed)
    n = len(frame)
    games, game_index = np.unique(frame["game_id"].to_numpy(), return_inverse=True)
    pace = 1.0 + PACE_SD * scale * rng.standard_normal((len(games), worlds))
    mins = frame["minutes_mean"].to_numpy()[:, None] + (
        frame["minutes_sd"].to_numpy()[:, None] * scale * rng.standard_normal((n, worlds))
    )
    np.clip(mins, 0.0, 48.0, out=mins)
    mean_rate = frame["rate_mean"].to_numpy()[:, None]
    rel_sd = np.where(mean_rate > 0, frame["rate_sd"].to_numpy()[:, None] / np.maximum(mean_rate, 1e-9), 0.0)
    sigma = np.sqrt(np.log1p((rel_sd * scale) ** 2))
    rate = mean_rate * np.exp(sigma * rng.standard_normal((n, worlds)) - sigma**2 / 2)
    fp = mins * rate * pace[game_index]
    fp[frame["is_out"].to_numpy()] = 0.0
    p10, p50, p90 = np.percentile(fp, [10, 50, 90], axis=1)
    return pd.DataFrame(
        {
            "player_id": frame["player_id"],
            "team": frame["team"],
            "game_id": frame["game_id"],
            "fp_mean": fp.mean(axis=1).round(6),
            "fp_std": fp.std(axis=1).round(6),
            "fp_p10": p10.round(6),
            "fp_p50": p50.round(6),
            "fp_p90": p90.round(6),
            "minutes_sim_mean": mins.mean(axis=1).round(6),
            "worlds": np.full(n, worlds, dtype="int64"),
        }
    )


def run(ctx: StepContext) -> None:
    minutes = ctx.upstream("minutes.score", schema=MINUTES_SCORE)
    rates = ctx.upstream("rates.score", schema=RATES_SCORE)
    worlds = ctx.partition.worlds or DEFAULT_WORLDS
    profile = ctx.partition.profile or "base"
    seed = stable_seed(ctx.game_date.isoformat(), ctx.partition.run_id, profile)
    frame = simulate(
        minutes.drop(columns=["model_run_id"]),
        rates,
        worlds=worlds,
        seed=seed,
        scale=profile_scale(profile),
    )
    ctx.write("data", frame, schema=SIM, unique=("player_id",))
    ctx.metric("worlds", worlds)
    ctx.metric("player_worlds", worlds * len(frame))
    ctx.metric("fp_total", float(frame["fp_mean"].sum()))


STEPS = [
    StepSpec(
        asset="sim.run",
        run=run,
        description="Monte Carlo fantasy-point distribution per player (mean, sd, p10/p50/p90)",
        consumes=("minutes.score", "rates.score"),
        concurrency=("stage.sim",),
        resources=Resources(cpu="1", memory="1Gi", cpu_limit="2", memory_limit="3Gi"),
    )
]
