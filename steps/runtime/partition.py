"""The partition: the unit of work, and its rendering into store keys.

Every value that ends up in a key is checked here, once, so that nothing a user types can
escape its key prefix (no separators, no `..`, no whitespace, no empty values).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from steps.runtime.errors import InvalidPartition
from steps.runtime.timefmt import iso_utc

# Letters, digits, dot, underscore, dash; must start with a letter or digit. No `/`, `\`,
# `=`, whitespace or `..`, so a value can never form or escape a key segment.
_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def check_token(value: str, what: str) -> str:
    """A value that becomes part of a key: reject anything that could escape its prefix."""
    if not isinstance(value, str):
        raise InvalidPartition(f"{what} must be text, got {type(value).__name__}")
    if value == "" or value.strip() == "":
        raise InvalidPartition(f"{what} is empty")
    if value != value.strip() or any(ch.isspace() for ch in value):
        raise InvalidPartition(f"{what} {value!r} contains whitespace")
    if "/" in value or "\\" in value:
        raise InvalidPartition(f"{what} {value!r} contains a path separator")
    if ".." in value:
        raise InvalidPartition(f"{what} {value!r} contains '..'")
    if not _SAFE_TOKEN.match(value):
        raise InvalidPartition(
            f"{what} {value!r} may use only letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit, at most 128 characters)"
        )
    return value


def parse_game_date(value: Any) -> date:
    """An ET slate date, strictly `YYYY-MM-DD`."""
    if isinstance(value, datetime):
        raise InvalidPartition(f"game_date must be a date, not a timestamp: {value!r}")
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value.strip() if value else ""):
        raise InvalidPartition(f"game_date {value!r} is not an ISO date (YYYY-MM-DD)")
    if value != value.strip():
        raise InvalidPartition(f"game_date {value!r} contains whitespace")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidPartition(f"game_date {value!r} is not a real date: {exc}") from exc


def parse_as_of(value: Any) -> datetime:
    """A timezone-aware instant, normalised to UTC. Naive timestamps are refused."""
    if isinstance(value, str):
        text = value.strip()
        if not text or text != value:
            raise InvalidPartition(f"run_as_of_ts {value!r} is empty or has whitespace")
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InvalidPartition(
                f"run_as_of_ts {value!r} is not an ISO-8601 timestamp (e.g. 2025-01-15T22:00:00Z)"
            ) from exc
    if not isinstance(value, datetime):
        raise InvalidPartition(f"run_as_of_ts must be a timestamp, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidPartition(
            f"run_as_of_ts {value.isoformat()} is naive; give a timezone (e.g. a trailing 'Z')"
        )
    return value.astimezone(UTC)


class PartitionKey(BaseModel):
    """The part of a partition that appears in keys: `game_date=<D>/run=<run_id>`."""

    model_config = ConfigDict(frozen=True)

    game_date: date
    run_id: str

    def segments(self) -> str:
        return f"game_date={self.game_date.isoformat()}/run={self.run_id}"

    @classmethod
    def from_segments(cls, text: str) -> PartitionKey:
        parts = text.strip("/").split("/")
        if len(parts) != 2:
            raise InvalidPartition(f"expected 'game_date=<D>/run=<run_id>', got {text!r}")
        fields: dict[str, str] = {}
        for part, name in zip(parts, ("game_date", "run"), strict=True):
            prefix = f"{name}="
            if not part.startswith(prefix):
                raise InvalidPartition(f"expected segment '{prefix}...', got {part!r}")
            fields[name] = part[len(prefix) :]
        return cls(
            game_date=parse_game_date(fields["game_date"]),
            run_id=check_token(fields["run"], "run_id"),
        )


class Partition(BaseModel):
    """One unit of work: an ET slate date, what we knew at `run_as_of_ts`, and a run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    game_date: date
    run_as_of_ts: datetime
    run_id: str
    draft_group_id: str | None = None
    season: Annotated[int, Field(ge=1946, le=2100)] | None = None
    month: str | None = None
    profile: str | None = None
    worlds: Annotated[int, Field(gt=0, le=1_000_000)] | None = None

    @field_validator("game_date", mode="before")
    @classmethod
    def _game_date(cls, value: Any) -> date:
        return parse_game_date(value)

    @field_validator("run_as_of_ts", mode="before")
    @classmethod
    def _as_of(cls, value: Any) -> datetime:
        return parse_as_of(value)

    @field_validator("run_id", "draft_group_id", "profile", mode="before")
    @classmethod
    def _token(cls, value: Any, info: Any) -> Any:
        if value is None and info.field_name != "run_id":
            return None
        return check_token(value, info.field_name)

    @field_validator("month", mode="before")
    @classmethod
    def _month(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str) or not _MONTH.match(value):
            raise InvalidPartition(f"month {value!r} is not YYYY-MM")
        return value

    @classmethod
    def build(cls, **values: Any) -> Partition:
        """Construct, turning pydantic's errors into one clear InvalidPartition."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise InvalidPartition(describe_validation_error(exc)) from None

    @property
    def key(self) -> PartitionKey:
        return PartitionKey(game_date=self.game_date, run_id=self.run_id)

    def segments(self) -> str:
        return self.key.segments()

    def as_of_iso(self) -> str:
        return iso_utc(self.run_as_of_ts)


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "value"
        message = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
