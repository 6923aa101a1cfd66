"""Append-only run events: one new object per event, never updated in place."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from steps.runtime import layout
from steps.runtime.store import Store
from steps.runtime.timefmt import utc_now

EventKind = Literal["step_started", "step_finished", "range_started", "range_finished"]


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_version: Literal["v1"] = "v1"
    event_id: str
    ts: datetime
    kind: EventKind
    correlation_id: str
    asset: str | None = None
    game_date: date | None = None
    run_id: str | None = None
    status: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


def emit(store: Store, kind: EventKind, *, correlation_id: str, **fields: Any) -> Event:
    event = Event(event_id=uuid.uuid4().hex, ts=utc_now(), kind=kind, correlation_id=correlation_id, **fields)
    store.put_if(
        layout.event_key(event.ts, event.event_id),
        event.model_dump_json(indent=2).encode(),
        if_none_match=True,
    )
    return event


def read_events(store: Store, day: str | None = None) -> list[Event]:
    return [
        Event.model_validate_json(store.get_bytes(i.key)) for i in store.list(layout.event_day_prefix(day))
    ]
