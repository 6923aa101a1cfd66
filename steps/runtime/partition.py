"""The partition: the unit of work, and its rendering into store keys.

Every value that ends up in a key is checked here, once, so that nothing a user types can
escape its key prefix (no separators, no `..`, no whitespace, no empty values).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from steps.runtime.errors import InvalidPartition
from steps.runtime.shapes import SHAPES, ShapeName
from steps.runtime.timefmt import iso_utc

# Letters, digits, dot, underscore, dash; must start with a letter or digit. No `/`, `\`,
# `=`, whitespace or `..`, so a value can never form or escape a key segment.
_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def check_token(value: str, what: str) -> str:
    """A value that becomes part of a key: reject anything that could escape its prefix."""
    if isinstance(value, str) and _SAFE_TOKEN.fullmatch(value) and ".." not in value:
        return value  # the common case, at the cost of one match (a listing checks thousands)
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


_SEGMENTS = (
    ("month", "month"),
    ("game_date", "game_date"),
    ("draft_group_id", "draft_group"),
    ("run_id", "run"),
)


class PartitionKey(BaseModel):
    """The part of a partition that appears in keys, in its shape's order, e.g.
    `game_date=<D>/run=<run_id>`, `month=<YYYY-MM>/run=<run_id>`,
    `game_date=<D>/draft_group=<G>/run=<run_id>`, or `game_date=<D>` (not run-scoped)."""

    model_config = ConfigDict(frozen=True)

    month: str | None = None
    game_date: date | None = None
    draft_group_id: str | None = None
    run_id: str | None = None

    def segments(self) -> str:
        parts = [
            f"{label}={self._text(field)}" for field, label in _SEGMENTS if getattr(self, field) is not None
        ]
        return "/".join(parts)

    def scope(self) -> PartitionKey:
        """The same partition for every run: where its pointer lives."""
        return self.model_copy(update={"run_id": None})

    def describe(self) -> str:
        """How people name it: `2025-01`, `2025-01-12`, `2025-01-12 / draft group 118223`."""
        words = [self.month or "", self.game_date.isoformat() if self.game_date else ""]
        text = " ".join(w for w in words if w)
        return f"{text} / draft group {self.draft_group_id}" if self.draft_group_id else text

    def _text(self, field: str) -> str:
        value = getattr(self, field)
        return value.isoformat() if isinstance(value, date) else str(value)

    @classmethod
    def from_segments(cls, text: str) -> PartitionKey:
        parts = [p for p in text.strip("/").split("/") if p]
        labels = [label for _, label in _SEGMENTS]
        fields: dict[str, Any] = {}
        position = 0
        for part in parts:
            name, sep, value = part.partition("=")
            if not sep or name not in labels[position:]:
                raise InvalidPartition(
                    f"expected segments like 'game_date=<D>/run=<run_id>' in that order, got {text!r}"
                )
            position = labels.index(name) + 1
            fields[name] = value
        if ("month" in fields) == ("game_date" in fields) or (
            "draft_group" in fields and "run" not in fields
        ):
            raise InvalidPartition(
                f"expected one of month=<YYYY-MM> or game_date=<D>, then [draft_group=<G>/]run=<run_id>, got {text!r}"
            )
        return cls(
            month=_check_month(fields["month"]) if "month" in fields else None,
            game_date=parse_game_date(fields["game_date"]) if "game_date" in fields else None,
            draft_group_id=check_token(fields["draft_group"], "draft_group_id")
            if "draft_group" in fields
            else None,
            run_id=check_token(fields["run"], "run_id") if "run" in fields else None,
        )


def _check_month(value: Any) -> str:
    if not isinstance(value, str) or not _MONTH.match(value):
        raise InvalidPartition(f"month {value!r} is not YYYY-MM")
    return value


def month_of(day: date) -> str:
    return f"{day:%Y-%m}"


SEASON_FIRST_MONTH = 8  # a season is named by its first year and begins in August


def season_of(day: date) -> int:
    """The NBA season a date belongs to: it starts in the autumn (August on), named by its first year."""
    return day.year if day.month >= SEASON_FIRST_MONTH else day.year - 1


def season_start(day: date) -> date:
    """The first day of the season `day` belongs to."""
    return date(season_of(day), SEASON_FIRST_MONTH, 1)


class Partition(BaseModel):
    """One unit of work of one step: the values its shape keys on (steps/runtime/shapes.py)
    and what we knew at `run_as_of_ts`.

    `game_date` is the slate date; for a month partition, the month's first day. A partition
    that is not run-scoped (a settled date) has no `run_id`; its `run_as_of_ts` is the time
    its results settle.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    shape: ShapeName = "date"
    game_date: date
    run_as_of_ts: datetime
    run_id: str | None
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
        if value is None:
            return None
        return check_token(value, info.field_name)

    @field_validator("month", mode="before")
    @classmethod
    def _month(cls, value: Any) -> Any:
        return None if value is None else _check_month(value)

    @model_validator(mode="after")
    def _fits_shape(self) -> Partition:
        shape = SHAPES[self.shape]
        if shape.run_scoped and self.run_id is None:
            raise ValueError(f"a {shape.name} partition needs a run_id")
        if not shape.run_scoped and self.run_id is not None:
            raise ValueError(f"a {shape.name} partition is not run-scoped: it takes no run_id")
        if "draft_group" in shape.keys and self.draft_group_id is None:
            raise ValueError("a draft_group partition needs a draft_group_id")
        if "draft_group" not in shape.keys and self.draft_group_id is not None:
            raise ValueError(f"a {shape.name} partition takes no draft_group_id")
        if shape.name == "month":
            if self.month is None:
                raise ValueError("a month partition needs a month (YYYY-MM)")
            if month_of(self.game_date) != self.month or self.game_date.day != 1:
                raise ValueError(f"a month partition's game_date is its first day, not {self.game_date}")
        return self

    @classmethod
    def build(cls, **values: Any) -> Partition:
        """Construct, turning pydantic's errors into one clear InvalidPartition."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise InvalidPartition(describe_validation_error(exc)) from None

    @property
    def key(self) -> PartitionKey:
        keys = SHAPES[self.shape].keys
        return PartitionKey(
            month=self.month if "month" in keys else None,
            game_date=self.game_date if "game_date" in keys else None,
            draft_group_id=self.draft_group_id if "draft_group" in keys else None,
            run_id=self.run_id if "run" in keys else None,
        )

    def segments(self) -> str:
        return self.key.segments()

    def describe(self) -> str:
        return self.key.describe()

    def differences(self, other: Partition) -> list[str]:
        """The fields in which `other` is a different partition (empty when the same). Two
        runs with one key must be one partition: the same as-of, profile, worlds ..."""
        mine, theirs = self.model_dump(mode="json"), other.model_dump(mode="json")
        return [name for name in mine if mine[name] != theirs[name]]

    def as_of_iso(self) -> str:
        return iso_utc(self.run_as_of_ts)


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "value"
        message = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
