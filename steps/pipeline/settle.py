"""When a slate's results settle, and the not-due answer of a step that reads them earlier."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")


def settle_time(game_date: date) -> datetime:
    """When a slate's box scores are final: noon ET the next day."""
    return datetime.combine(game_date + timedelta(days=1), time(12, 0), tzinfo=ET)


def settled_or_not_due(game_date: date, what: str) -> datetime:
    """The slate's settle time, or not due yet: results are read as of it, never before."""
    from steps.runtime.step import NotDue
    from steps.runtime.timefmt import iso_utc, utc_now

    settle = settle_time(game_date)
    if utc_now() < settle:
        raise NotDue(f"{what} for {game_date} settle at {iso_utc(settle)}; they are read after that")
    return settle
