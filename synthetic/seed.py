"""`pipeline seed-history`: land a deterministic season of source snapshots, no internet.

Each source lands as the real scrapers would: timestamped snapshots under
`landing/<source>/game_date=<D>/snapshot_ts=<TS>/data.parquet` (docs/landing.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd

from steps.pipeline.landing import SCHEMAS
from steps.runtime import layout
from steps.runtime.contracts import enforce
from steps.runtime.store import Store, frame_to_parquet
from synthetic.season import (
    ET,
    FIRST_INJURY_HOUR,
    ODDS_HOURS,
    Season,
    build_season,
    et,
    season_bounds,
)


def _utc(ts: datetime) -> pd.Timestamp:
    return pd.Timestamp(ts).tz_convert("UTC")


def _injury_report(season: Season, day: date, teams: set[str], at: datetime) -> pd.DataFrame:
    st = season.status[day]
    st = st[st["team"].isin(teams)]
    hour = at.astimezone(ET).hour
    status = st["morning"].copy()
    resolved = (st["morning"] == "QUESTIONABLE") & (st["resolve_hour"] <= hour)
    status[resolved] = np.where(st.loc[resolved, "resolves_out"], "OUT", "")
    frame = pd.DataFrame({"player_id": st["player_id"], "team": st["team"], "status": status})
    frame = frame[frame["status"] != ""].copy()
    frame["reported_ts"] = _utc(at)
    frame["reported_ts"] = frame["reported_ts"].astype("datetime64[ns, UTC]")
    return frame.sort_values("player_id").reset_index(drop=True)


def _salaries(pool: pd.DataFrame, games: pd.DataFrame, day: date, rng: np.random.Generator) -> pd.DataFrame:
    """One salary list per draft group: the whole slate, and the evening games when they differ."""
    teams = set(games["home_team"]) | set(games["away_team"])
    team_tip = {}
    for game in games.itertuples():
        team_tip[game.home_team] = team_tip[game.away_team] = game.tip_ts
    main_teams = {t for t, tip in team_tip.items() if tip.tz_convert(ET).hour >= 19}
    groups = {f"dg-{day:%Y%m%d}-all": teams}
    if len(main_teams) >= 4 and main_teams != teams:
        groups[f"dg-{day:%Y%m%d}-main"] = main_teams
    form = rng.normal(1.0, 0.04, len(pool))
    salaries = np.clip(np.round(pool["salary_base"].to_numpy() * form / 100) * 100, 3000, 12000)
    rows = []
    for dg, members in sorted(groups.items()):
        mask = pool["team"].isin(members).to_numpy()
        rows.append(
            pd.DataFrame(
                {
                    "draft_group_id": dg,
                    "player_id": pool["player_id"].to_numpy()[mask],
                    "team": pool["team"].to_numpy()[mask],
                    "position": pool["position"].to_numpy()[mask],
                    "salary": salaries[mask].astype("int64"),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _odds(
    season: Season, games: pd.DataFrame, day: date, first_tip: datetime, rng: np.random.Generator
) -> list[tuple[str, datetime, pd.DataFrame]]:
    """Lines that move toward the close through the day; none on an odds-gap date."""
    out: list[tuple[str, datetime, pd.DataFrame]] = []
    if day in season.odds_gap_dates:
        return out
    for k, at in enumerate(ODDS_HOURS):
        when = et(day, at)
        if when > first_tip:
            break
        drift = (len(ODDS_HOURS) - 1 - k) / len(ODDS_HOURS)
        rows = []
        for game in games.itertuples():
            spread, total = season.spreads[game.game_id]
            rows.append(
                {
                    "game_id": game.game_id,
                    "spread_home": float(round((spread + rng.normal(0, 1.5 * drift)) * 2) / 2),
                    "total": float(round((total + rng.normal(0, 3 * drift)) * 2) / 2),
                }
            )
        out.append(("odds", when, pd.DataFrame(rows)))
    return out


def _lineup(
    season: Season, games: pd.DataFrame, box: pd.DataFrame, at: datetime, doubtful: set[int]
) -> pd.DataFrame:
    """Projected lineups at `at`: confirmed from the box score 30 minutes before a game's tip,
    else the depth chart without the doubtful."""
    players = season.players
    rows = []
    for game in games.itertuples():
        confirmed = game.tip_ts.to_pydatetime() - timedelta(minutes=30) <= at
        for team in (game.home_team, game.away_team):
            if confirmed:
                played = box[(box["game_id"] == game.game_id) & (box["team"] == team)]
                ids = played["player_id"].tolist()
                starters = set(played.loc[played["started"], "player_id"])
            else:
                squad = players[players["team"] == team]
                ids = [p for p in squad.sort_values("slot")["player_id"] if p not in doubtful]
                starters = set(ids[:5])
            for pid in ids:
                rows.append(
                    {
                        "game_id": game.game_id,
                        "team": team,
                        "player_id": pid,
                        "is_starter": pid in starters,
                        "confirmed": bool(confirmed),
                    }
                )
    return pd.DataFrame(rows)


def snapshots_for_date(season: Season, day: date) -> list[tuple[str, datetime, pd.DataFrame]]:
    """Every (source, snapshot time, frame) that lands for one slate date."""
    games = season.games[season.games["game_date"] == day.isoformat()]
    if games.empty:
        return []
    rng = np.random.default_rng(np.random.SeedSequence([season.seed, season.season, 6, day.toordinal()]))
    teams = set(games["home_team"]) | set(games["away_team"])
    first_tip = games["tip_ts"].min().to_pydatetime().astimezone(ET)
    players = season.players
    out: list[tuple[str, datetime, pd.DataFrame]] = [
        ("schedule", et(date(season.season, 8, 15), time(12, 0)), games.reset_index(drop=True))
    ]
    roster = players[["team", "player_id", "player_name", "position"]].copy()
    roster["active"] = ~((players["slot"] == 14) & (rng.random(len(players)) < 0.3))
    out.append(("roster", et(day, time(6, 0)), roster.reset_index(drop=True)))
    pool = players[players["team"].isin(teams)]
    out.append(("salaries", et(day - timedelta(days=1), time(20, 0)), _salaries(pool, games, day, rng)))
    hour = et(day, time(FIRST_INJURY_HOUR, 0))
    while hour <= first_tip - timedelta(minutes=30):
        out.append(("injuries", hour, _injury_report(season, day, teams, hour)))
        hour += timedelta(hours=1)
    out.extend(_odds(season, games, day, first_tip, rng))
    box = season.boxscores[day]
    noon = et(day, time(12, 0))
    noon_report = _injury_report(season, day, teams, noon)
    doubtful = set(noon_report.loc[noon_report["status"].isin(["OUT", "QUESTIONABLE"]), "player_id"])
    confirm_times = sorted(
        {(tip.to_pydatetime() - timedelta(minutes=30)).astimezone(ET) for tip in games["tip_ts"]}
    )
    for at in [noon, *confirm_times]:
        out.append(("lineups", at, _lineup(season, games, box, at, doubtful)))
    out.append(("boxscores", et(day + timedelta(days=1), time(6, 0)), box.reset_index(drop=True)))
    out.append(("tracking", et(day + timedelta(days=1), time(9, 0)), _tracking(season, box, rng)))
    return out


def _tracking(season: Season, box: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Touches and usage of everyone who played: usage follows a player's true scoring rate,
    with game-to-game noise, so a season of it says something about the player's role."""
    played = box[box["minutes"] > 0]
    rate = played["player_id"].map(season.players.set_index("player_id")["rate"]).to_numpy()
    usage = np.clip(20.0 * rate / 0.95 + rng.normal(0, 3.0, len(played)), 2, 45)
    touches = np.round(
        played["minutes"].to_numpy() * (0.8 + 0.05 * usage) * rng.lognormal(0, 0.15, len(played))
    )
    return pd.DataFrame(
        {
            "game_id": played["game_id"].to_numpy(),
            "game_date": played["game_date"].to_numpy(),
            "team": played["team"].to_numpy(),
            "player_id": played["player_id"].to_numpy(),
            "minutes": played["minutes"].astype(float).to_numpy(),
            "touches": touches.astype("int64"),
            "usage_pct": usage.round(2),
        }
    ).reset_index(drop=True)


def seed_history(
    store: Store,
    season: int,
    *,
    seed: int = 7,
    start: date | None = None,
    end: date | None = None,
    progress: Callable[[date], None] | None = None,
    threads: int = 8,
) -> Counter[str]:
    """Land every snapshot of `season` between `start` and `end` (inclusive)."""
    first, last = season_bounds(season)
    start, end = max(start or first, first), min(end or last, last)
    league = build_season(season, seed)
    counts: Counter[str] = Counter()
    jobs: list[tuple[str, bytes]] = []
    for day in league.dates:
        if not start <= day <= end:
            continue
        for source, at, frame in snapshots_for_date(league, day):
            frame = enforce(frame, SCHEMAS[source], f"seed-history {source} {day}")
            key = layout.landing_snapshot_key(source, day, at)
            jobs.append((key, frame_to_parquet(frame)))
            counts[source] += 1
        if progress:
            progress(day)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda job: store.put_bytes(*job), jobs))
    return counts
