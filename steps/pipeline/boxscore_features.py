"""Per-player history features from box scores, computed strictly before each date.

One function serves scoring (features for today's slate from all earlier games) and training
(features for every past game from the games before it), so the model is trained on exactly
the features it is scored on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HISTORY_COLUMNS = [
    "gp",
    "season_min_avg",
    "roll5_min",
    "season_min_sum",
    "season_fp_sum",
    "roll10_min_sum",
    "roll10_fp_sum",
    "last_game_date",
]


def _rolling_sum_before(grouped: pd.core.groupby.SeriesGroupBy, window: int) -> pd.Series:
    return grouped.transform(lambda s: s.shift(1).rolling(window, min_periods=1).sum()).fillna(0.0)


def per_game_history(box: pd.DataFrame) -> pd.DataFrame:
    """For each (player, game) row of `box`: the player's history before that game."""
    if box.empty:
        return pd.DataFrame(columns=["player_id", "game_date", *HISTORY_COLUMNS])
    frame = box.sort_values(["player_id", "game_date"]).reset_index(drop=True)
    g = frame.groupby("player_id", sort=False)
    out = frame[["player_id", "game_date", "team", "minutes", "dk_fp", "started"]].copy()
    out["gp"] = g.cumcount().astype("int64")
    out["season_min_sum"] = (g["minutes"].cumsum() - frame["minutes"]).astype(float)
    out["season_fp_sum"] = (g["dk_fp"].cumsum() - frame["dk_fp"]).astype(float)
    out["season_min_avg"] = np.where(out["gp"] > 0, out["season_min_sum"] / out["gp"].clip(lower=1), np.nan)
    out["roll5_min"] = g["minutes"].transform(lambda s: s.shift(1).rolling(5, min_periods=1).mean())
    out["roll10_min_sum"] = _rolling_sum_before(g["minutes"], 10)
    out["roll10_fp_sum"] = _rolling_sum_before(g["dk_fp"], 10)
    out["last_game_date"] = g["game_date"].shift(1)
    return out


def history_as_of(box: pd.DataFrame) -> pd.DataFrame:
    """Each player's history over all of `box` (all games before the slate)."""
    if box.empty:
        return pd.DataFrame(columns=["player_id", *HISTORY_COLUMNS])
    frame = box.sort_values(["player_id", "game_date"])
    g = frame.groupby("player_id", sort=True)
    last10 = frame.groupby("player_id", sort=True).tail(10).groupby("player_id")
    last5 = frame.groupby("player_id", sort=True).tail(5).groupby("player_id")
    out = pd.DataFrame(
        {
            "gp": g.size().astype("int64"),
            "season_min_sum": g["minutes"].sum().astype(float),
            "season_fp_sum": g["dk_fp"].sum().astype(float),
            "roll5_min": last5["minutes"].mean(),
            "roll10_min_sum": last10["minutes"].sum().astype(float),
            "roll10_fp_sum": last10["dk_fp"].sum().astype(float),
            "last_game_date": g["game_date"].max(),
        }
    )
    out["season_min_avg"] = out["season_min_sum"] / out["gp"]
    return out.reset_index()


def rest_days(game_date: pd.Series | str, last_game_date: pd.Series) -> pd.Series:
    """Days since the last game (capped at 7; 3 when there is none)."""
    today = pd.to_datetime(game_date)
    last = pd.to_datetime(last_game_date)
    days = (today - last).dt.days.astype(float)
    return days.fillna(3.0).clip(upper=7.0)


def salary_minutes_prior(salary: pd.Series) -> pd.Series:
    """Minutes a player of this salary plays, for players with no history yet."""
    return ((salary.astype(float) - 3000) / 8500 * 30 + 6).clip(2, 36)
