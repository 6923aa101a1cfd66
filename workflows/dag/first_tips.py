"""Each slate's first tip, from its schedule snapshot, remembered in the store per snapshot so
that planning a range again reads one small object per season instead of a snapshot per date."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime

from pydantic import BaseModel, ValidationError

from steps.runtime import asof, layout
from steps.runtime.errors import ObjectNotFound, PipelineError
from steps.runtime.partition import season_of
from steps.runtime.store import Store
from workflows.dag.draft_groups import read_column

log = logging.getLogger(__name__)

Choices = Mapping[date, asof.Snapshot | asof.Gap]


class KnownTip(BaseModel):
    """A snapshot's first tip, as read from it once. Landing is append-only
    (docs/landing.md): a snapshot's key and size name its bytes, so they are what is checked."""

    size_bytes: int
    first_tip: datetime | None  # None: the snapshot lists no game


class KnownTips(BaseModel):
    """One season's remembered first tips, by snapshot key."""

    tips: dict[str, KnownTip] = {}


def _remembered(store: Store, season: int) -> KnownTips:
    """What an earlier plan remembered; nothing when there is none or it is unreadable (it is
    only ever a shortcut: every tip it lacks is read from its snapshot)."""
    key = layout.first_tips_key(season)
    try:
        return KnownTips.model_validate_json(store.get_bytes(key))
    except ObjectNotFound:
        return KnownTips()
    except (ValidationError, PipelineError) as exc:
        log.warning("ignoring %s, it is read from the snapshots again: %s", store.describe(key), exc)
        return KnownTips()


def _read(store: Store, snapshot: asof.Snapshot) -> KnownTip:
    tips = read_column(store, snapshot.key, "tip_ts")
    first = None if tips.empty else tips.min().to_pydatetime()
    return KnownTip(size_bytes=snapshot.size_bytes, first_tip=first)


def slate_first_tips(store: Store, choices: Choices, *, remember: bool = True) -> dict[date, datetime]:
    """First tip per date with a schedule (`plan.day_schedules`): from what earlier plans
    remembered where the snapshot is the same, else read from the snapshot, 8 at a time. With
    `remember`, what was read is remembered for the next plan (a dry run writes nothing)."""
    chosen = {d: c for d, c in choices.items() if isinstance(c, asof.Snapshot)}
    seasons = sorted({season_of(d) for d in chosen})
    with ThreadPoolExecutor(max_workers=8) as pool:
        known = dict(zip(seasons, pool.map(lambda s: _remembered(store, s), seasons), strict=True))
        found: dict[date, KnownTip] = {}
        unread: list[tuple[date, asof.Snapshot]] = []
        for day, snapshot in chosen.items():
            tip = known[season_of(day)].tips.get(snapshot.key)
            if tip is not None and tip.size_bytes == snapshot.size_bytes:
                found[day] = tip
            else:
                unread.append((day, snapshot))
        read = list(pool.map(lambda item: _read(store, item[1]), unread))
    for (day, snapshot), tip in zip(unread, read, strict=True):
        found[day] = tip
        known[season_of(day)].tips[snapshot.key] = tip
    if remember and unread:
        _remember(store, {season_of(day) for day, _ in unread}, known)
    return {day: tip.first_tip for day, tip in found.items() if tip.first_tip is not None}


def _remember(store: Store, seasons: set[int], known: dict[int, KnownTips]) -> None:
    """Best effort: two plans writing at once keep one's tips, and a store that refuses the
    write (read-only credentials) costs the next plan the reads it would have saved."""
    for season in sorted(seasons):
        key = layout.first_tips_key(season)
        try:
            store.put_bytes(key, known[season].model_dump_json().encode())
        except PipelineError as exc:
            log.warning("could not remember the first tips in %s: %s", store.describe(key), exc)
