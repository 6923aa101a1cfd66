"""A deterministic synthetic NBA season: the truth behind the seeded source history.

Everything is drawn from one seed. The season's truth (talents, schedule, injury stints,
every game's box score) is computed in full, in memory, from the seed alone; writing a date
range only chooses which of it lands. So seeding a sub-range gives byte-identical snapshots
for the dates it covers, and the same seed always gives the same league.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from steps.pipeline.landing import dk_fantasy_points

ET = ZoneInfo("America/New_York")
TEAMS = [
    "ATL", "BOS", "BKN", "CHA", "CHI", "CLE", "DAL", "DEN", "DET", "GSW",
    "HOU", "IND", "LAC", "LAL", "MEM", "MIA", "MIL", "MIN", "NOP", "NYK",
    "OKC", "ORL", "PHI", "PHX", "POR", "SAC", "SAS", "TOR", "UTA", "WAS",
]  # fmt: skip
POSITIONS = ["PG", "SG", "SF", "PF", "C"]
ROSTER_SIZE = 15
SLOT_MINUTES = np.array([34, 33, 32, 30, 29, 26, 24, 22, 19, 16, 12, 8, 5, 3, 2], dtype=float)
TIP_CHOICES = [time(19, 0), time(19, 0), time(19, 30), time(20, 0), time(22, 0)]
ODDS_HOURS = [time(10, 0), time(13, 0), time(16, 0), time(18, 30)]
FIRST_INJURY_HOUR = 10


def season_bounds(season: int) -> tuple[date, date]:
    """Regular season of the `season`-`season+1` NBA year (late October to mid April)."""
    return date(season, 10, 22), date(season + 1, 4, 13)


def et(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ET)


def _rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *tags]))


@dataclass
class Season:
    season: int
    seed: int
    players: pd.DataFrame  # player_id, team, slot, position, name, minutes_mu, rate, salary_base, ...
    games: pd.DataFrame  # game_id, game_date, tip_ts, home_team, away_team, season
    status: dict[date, pd.DataFrame]  # per date: player_id, morning, final, resolve_hour
    boxscores: dict[date, pd.DataFrame]
    odds_gap_dates: set[date]
    spreads: dict[str, tuple[float, float]]  # game_id -> (spread_home, total)

    @property
    def dates(self) -> list[date]:
        return sorted(self.status)


def _players(season: int, seed: int) -> pd.DataFrame:
    rng = _rng(seed, season, 1)
    rows = []
    for t, team in enumerate(TEAMS):
        noise = rng.normal(0, 2.0, ROSTER_SIZE)
        for slot in range(ROSTER_SIZE):
            mu = float(np.clip(SLOT_MINUTES[slot] + noise[slot], 1.0, 38.0))
            rate = float(np.clip(rng.normal(0.95, 0.16) + 0.006 * (mu - 20), 0.45, 1.65))
            expected_fp = mu * rate
            salary = int(
                np.clip(round((3000 + 200 * expected_fp * rng.normal(1, 0.06)) / 100) * 100, 3000, 11800)
            )
            rows.append(
                {
                    "player_id": f"P{t:02d}{slot:02d}",
                    "team": team,
                    "slot": slot,
                    "position": POSITIONS[slot % 5],
                    "player_name": f"{team} Player {slot + 1}",
                    "minutes_mu": round(mu, 3),
                    "rate": round(rate, 4),
                    "salary_base": salary,
                    "proneness": float(rng.beta(1.4, 30)),
                }
            )
    return pd.DataFrame(rows)


def _schedule(season: int, seed: int, days: list[date]) -> pd.DataFrame:
    rng = _rng(seed, season, 2)
    rows = []
    rested = {team: 2 for team in TEAMS}
    for day in days:
        if (day.month, day.day) in {(12, 24), (2, 14), (2, 15), (2, 16), (2, 17), (2, 18)}:
            for team in TEAMS:
                rested[team] += 1
            continue
        weights = np.array([1.0 if rested[t] >= 1 else 0.25 for t in TEAMS])
        n_games = int(np.clip(rng.poisson(7), 2, 15))
        chosen = rng.choice(len(TEAMS), size=2 * n_games, replace=False, p=weights / weights.sum())
        playing = set()
        for g in range(n_games):
            home, away = TEAMS[chosen[2 * g]], TEAMS[chosen[2 * g + 1]]
            tip = TIP_CHOICES[int(rng.integers(len(TIP_CHOICES)))]
            if day.weekday() == 6 and g == 0:
                tip = time(15, 30)
            rows.append(
                {
                    "game_id": f"{day:%Y%m%d}-{away}-{home}",
                    "game_date": day.isoformat(),
                    "season": season,
                    "tip_ts": pd.Timestamp(et(day, tip)).tz_convert("UTC"),
                    "home_team": home,
                    "away_team": away,
                }
            )
            playing |= {home, away}
        for team in TEAMS:
            rested[team] = 0 if team in playing else rested[team] + 1
    games = pd.DataFrame(rows)
    games["tip_ts"] = pd.to_datetime(games["tip_ts"], utc=True).astype("datetime64[ns, UTC]")
    return games.sort_values(["game_date", "tip_ts", "game_id"]).reset_index(drop=True)


def _statuses(players: pd.DataFrame, season: int, seed: int, days: list[date]) -> dict[date, pd.DataFrame]:
    """Each player's injury state per date: long stints plus day-to-day questionables."""
    rng = _rng(seed, season, 3)
    n = len(players)
    stint_left = np.zeros(n, dtype=int)
    prone = players["proneness"].to_numpy()
    out: dict[date, pd.DataFrame] = {}
    for day in days:
        start = (stint_left == 0) & (rng.random(n) < prone / 6)
        stint_left[start] = rng.geometric(1 / 6, start.sum())
        long_out = stint_left > 0
        u = rng.random(n)
        questionable = ~long_out & (u < 0.05)
        probable = ~long_out & ~questionable & (u < 0.07)
        resolves_out = rng.random(n) < 0.4
        resolve_hour = rng.integers(13, 19, n)
        final_out = long_out | (questionable & resolves_out)
        morning = np.where(
            long_out,
            "OUT",
            np.where(questionable, "QUESTIONABLE", np.where(probable, "PROBABLE", "")),
        )
        out[day] = pd.DataFrame(
            {
                "player_id": players["player_id"].to_numpy(),
                "team": players["team"].to_numpy(),
                "morning": morning,
                "final_out": final_out,
                "resolve_hour": resolve_hour,
                "resolves_out": questionable & resolves_out,
            }
        )
        stint_left = np.maximum(stint_left - 1, 0)
    return out


def _team_strength(players: pd.DataFrame, available: pd.Series) -> pd.Series:
    frame = players.assign(avail=available.to_numpy(), value=players["minutes_mu"] * players["rate"])
    return frame[frame["avail"]].groupby("team")["value"].sum()


def _boxscores(
    players: pd.DataFrame,
    games: pd.DataFrame,
    status: dict[date, pd.DataFrame],
    season: int,
    seed: int,
) -> tuple[dict[date, pd.DataFrame], dict[str, tuple[float, float]]]:
    rng = _rng(seed, season, 4)
    by_team = {team: grp for team, grp in players.groupby("team")}
    spreads: dict[str, tuple[float, float]] = {}
    boxes: dict[date, pd.DataFrame] = {}
    for game_date, day_games in games.groupby("game_date", sort=True):
        day = date.fromisoformat(game_date)
        st = status[day].set_index("player_id")
        available = ~players["player_id"].map(st["final_out"]).astype(bool)
        strength = _team_strength(players, available)
        rows = []
        for game in day_games.itertuples():
            diff = strength.get(game.home_team, 0) - strength.get(game.away_team, 0)
            spread_home = float(np.clip(round((-diff / 12 - 2.5) * 2) / 2, -25, 25))
            total = float(round((224 + rng.normal(0, 6)) * 2) / 2)
            spreads[game.game_id] = (spread_home, total)
            pace = total / 224
            margin = -spread_home + rng.normal(0, 11)
            for team in (game.home_team, game.away_team):
                roster = by_team[team]
                active = roster[~roster["player_id"].map(st["final_out"]).astype(bool)].copy()
                active = active.sort_values(["slot"])
                mu = active["minutes_mu"].to_numpy()
                starters = np.zeros(len(active), dtype=bool)
                starters[np.argsort(-(mu + rng.normal(0, 0.5, len(mu))), kind="stable")[:5]] = True
                blowout = max(0.0, abs(margin) - 12) * 0.012
                target = mu * np.where(starters, 1.04 - blowout, 1.0 + blowout)
                target = target * (240 / max(target.sum(), 1.0))
                target = np.minimum(target, 42)
                minutes = np.clip(target + rng.normal(0, 3.5, len(mu)), 0, 48)
                minutes = np.round(minutes * (240 / max(minutes.sum(), 1.0)), 1)
                minutes = np.minimum(minutes, 48.0)
                fp_target = minutes * active["rate"].to_numpy() * pace * rng.lognormal(0, 0.22, len(mu))
                lam = np.maximum(fp_target, 0)
                pts = rng.poisson(lam * 0.48)
                reb = rng.poisson(lam * 0.17)
                ast = rng.poisson(lam * 0.09)
                stl = rng.poisson(lam * 0.018)
                blk = rng.poisson(lam * 0.016)
                tov = rng.poisson(lam * 0.05)
                fg3m = rng.poisson(lam * 0.05)
                fp = dk_fantasy_points(pts, reb, ast, stl, blk, tov, fg3m)
                for i, pid in enumerate(active["player_id"]):
                    rows.append(
                        {
                            "game_id": game.game_id,
                            "game_date": game_date,
                            "team": team,
                            "player_id": pid,
                            "started": bool(starters[i]),
                            "minutes": float(minutes[i]),
                            "pts": int(pts[i]),
                            "reb": int(reb[i]),
                            "ast": int(ast[i]),
                            "stl": int(stl[i]),
                            "blk": int(blk[i]),
                            "tov": int(tov[i]),
                            "fg3m": int(fg3m[i]),
                            "dk_fp": float(fp[i]),
                        }
                    )
        boxes[day] = pd.DataFrame(rows)
    return boxes, spreads


def build_season(season: int, seed: int) -> Season:
    start, end = season_bounds(season)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    players = _players(season, seed)
    games = _schedule(season, seed, days)
    status = _statuses(players, season, seed, days)
    boxscores, spreads = _boxscores(players, games, status, season, seed)
    gap_rng = _rng(seed, season, 5)
    # Older data is patchier: odds are missing on ~12% of dates in the first half.
    midpoint = start + (end - start) / 2
    odds_gap_dates = {d for d in days if gap_rng.random() < (0.12 if d < midpoint else 0.02)}
    return Season(season, seed, players, games, status, boxscores, odds_gap_dates, spreads)
