"""The simulation kernel against numpy's own draws, and a season backfill at one and two workers."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.harness import copy_store, run_range
from steps.pipeline.sim import simulate


# ---- 4. the simulation kernel ------------------------------------------------------------
def simulation_kernel(players: int = 300, worlds: int = 10_000, repeats: int = 3) -> dict[str, float]:
    """Best of `repeats` for the kernel and for numpy alone, so a busy moment of a shared
    machine does not decide the ratio."""
    rng = np.random.default_rng(1)
    minutes = pd.DataFrame(
        {
            "player_id": [f"p{i}" for i in range(players)],
            "team": [f"t{i % 20}" for i in range(players)],
            "game_id": [f"g{i % 10}" for i in range(players)],
            "is_out": [False] * players,
            "minutes_mean": rng.uniform(5, 36, players),
            "minutes_sd": np.full(players, 5.0),
        }
    )
    rates = pd.DataFrame(
        {
            "player_id": minutes["player_id"],
            "rate_mean": rng.uniform(0.7, 1.3, players),
            "rate_sd": np.full(players, 0.25),
        }
    )
    kernel = numpy_only = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        simulate(minutes, rates, worlds=worlds, seed=3)
        kernel = min(kernel, time.perf_counter() - began)
        began = time.perf_counter()
        draw = np.random.default_rng(3)
        (
            draw.standard_normal((players, worlds)),
            draw.standard_normal((players, worlds)),
            draw.standard_normal((10, worlds)),
        )
        np.percentile(draw.standard_normal((players, worlds)), [10, 50, 90], axis=1)
        numpy_only = min(numpy_only, time.perf_counter() - began)
    naive_players, naive_worlds = 30, 2000
    began = time.perf_counter()
    loop_rng = np.random.default_rng(3)
    for p in range(naive_players):
        values = []
        for _ in range(naive_worlds):
            m = min(max(minutes["minutes_mean"][p] + 5.0 * loop_rng.standard_normal(), 0.0), 48.0)
            values.append(m * rates["rate_mean"][p] * float(np.exp(0.25 * loop_rng.standard_normal())))
        sorted(values)
    naive = time.perf_counter() - began
    pw = players * worlds
    return {
        "player_worlds": pw,
        "kernel_pw_per_s": pw / kernel,
        "numpy_draws_pw_per_s": pw / numpy_only,
        "naive_pw_per_s": naive_players * naive_worlds / naive,
        "repeats": repeats,
    }


# ---- 5. a season backfill ----------------------------------------------------------------
def season_backfill(template: Path, work: Path, start: date, end: date) -> list[dict[str, Any]]:
    rows = []
    for parallel in (1, 2):
        _, store = copy_store(template, work, f"season-{parallel}")
        rows.append({"parallel": parallel, **run_range(store, start, end, mode="warm", parallel=parallel)})
    return rows
