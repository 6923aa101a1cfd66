"""As-of selection: the latest snapshot at or before `run_as_of_ts`, or an explicit gap.

Snapshots are chosen by the time in their key (`snapshot_ts=`), never by "latest" or by a
file's mtime, so the same as-of always selects the same snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from steps.runtime import layout
from steps.runtime.store import Store
from steps.runtime.timefmt import iso_utc


class Snapshot(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    game_date: date
    snapshot_ts: datetime
    key: str  # the data object's key
    size_bytes: int


class Gap(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    game_date: date
    as_of: datetime
    reason: str


def _pick(source: str, game_date: date, as_of: datetime, found: list[Snapshot]) -> Snapshot | Gap:
    eligible = [s for s in found if s.snapshot_ts <= as_of]
    if not eligible:
        later = min((s.snapshot_ts for s in found), default=None)
        reason = f"no {source} snapshot for {game_date} at or before {iso_utc(as_of)}" + (
            f" (earliest is {iso_utc(later)})" if later else " (none landed at all)"
        )
        return Gap(source=source, game_date=game_date, as_of=as_of, reason=reason)
    return max(eligible, key=lambda s: s.snapshot_ts)


def _snapshots(store: Store, source: str, prefix: str) -> Iterator[Snapshot]:
    """Every complete snapshot of `source` under `prefix`, from one paginated listing."""
    for info in store.list(prefix):
        parsed = layout.parse_landing_snapshot_key(info.key)
        if parsed:
            yield Snapshot(
                source=source, game_date=parsed[1], snapshot_ts=parsed[2], key=info.key, size_bytes=info.size
            )


def select_as_of(store: Store, source: str, game_date: date, as_of: datetime) -> Snapshot | Gap:
    """One listing of the source's date folder; the latest snapshot not after `as_of`."""
    found = list(_snapshots(store, source, layout.landing_date_prefix(source, game_date)))
    return _pick(source, game_date, as_of, found)


def select_each(store: Store, source: str, wanted: dict[date, datetime]) -> dict[date, Snapshot | Gap]:
    """For many dates at once, each with its own as-of: one paginated listing of the source."""
    by_date: dict[date, list[Snapshot]] = {day: [] for day in wanted}
    for snap in _snapshots(store, source, layout.landing_source_prefix(source)):
        if snap.game_date in by_date:
            by_date[snap.game_date].append(snap)
    return {day: _pick(source, day, wanted[day], found) for day, found in by_date.items()}


def select_history(
    store: Store, source: str, before: date, as_of: datetime, *, since: date | None = None
) -> list[Snapshot]:
    """For each date in [since, before) the as-of snapshot; one paginated listing in all.

    Dates with nothing at or before `as_of` are simply absent: history that was not yet
    published at `as_of` must not leak into the run.
    """
    by_date: dict[date, list[Snapshot]] = {}
    for snap in _snapshots(store, source, layout.landing_source_prefix(source)):
        if snap.game_date < before and (since is None or snap.game_date >= since):
            by_date.setdefault(snap.game_date, []).append(snap)
    picked = []
    for game_date in sorted(by_date):
        choice = _pick(source, game_date, as_of, by_date[game_date])
        if isinstance(choice, Snapshot):
            picked.append(choice)
    return picked
