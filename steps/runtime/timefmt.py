"""One textual form for timestamps in keys and one in JSON, so both sort as time does."""

from __future__ import annotations

from datetime import UTC, datetime

KEY_TS_FORMAT = "%Y%m%dT%H%M%SZ"


def to_key_ts(ts: datetime) -> str:
    """A UTC timestamp as a key segment: fixed width, so lexical order is time order."""
    return require_aware(ts).astimezone(UTC).strftime(KEY_TS_FORMAT)


def from_key_ts(text: str) -> datetime:
    return datetime.strptime(text, KEY_TS_FORMAT).replace(tzinfo=UTC)


def require_aware(ts: datetime) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"timestamp {ts.isoformat()} has no timezone; give one (e.g. 'Z' for UTC)")
    return ts


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(ts: datetime) -> str:
    return require_aware(ts).astimezone(UTC).isoformat().replace("+00:00", "Z")
