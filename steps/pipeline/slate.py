"""Facts about a slate shared by several steps."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from steps.runtime.errors import MissingInput

ET = ZoneInfo("America/New_York")
LEAGUE_TOTAL = 224.0
TEAM_MINUTES = 240.0
PROFILES = {"base": 1.0, "conservative": 0.8, "volatile": 1.25}
DEFAULT_WORLDS = 1000


def settle_time(game_date: date) -> datetime:
    """When a slate's box scores are final: noon ET the next day."""
    return datetime.combine(game_date + timedelta(days=1), time(12, 0), tzinfo=ET)


def settled_or_skip(game_date: date, what: str) -> datetime:
    """The slate's settle time, or not due yet: results are read as of it, never before."""
    from steps.runtime.step import SkipPartition
    from steps.runtime.timefmt import iso_utc, utc_now

    settle = settle_time(game_date)
    if utc_now() < settle:
        raise SkipPartition(f"{what} for {game_date} settle at {iso_utc(settle)}; they are read after that")
    return settle


def group_rows(ctx: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a date-level table that belong to this partition's draft group."""
    group = ctx.partition.draft_group_id
    rows = frame[frame["draft_group_id"] == group]
    if rows.empty:
        raise MissingInput(f"draft group {group!r} is not on the {ctx.game_date} slate")
    return rows


def stable_seed(*parts: object) -> int:
    """A seed from values, stable across processes and machines (unlike hash())."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def profile_scale(profile: str | None) -> float:
    name = profile or "base"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(sorted(PROFILES))}")
    return PROFILES[name]
