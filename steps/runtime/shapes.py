"""Partition shapes (what one partition of an asset is) and input mappings (which partitions of
an upstream asset one partition of a step reads). Steps declare both; keys, manifests,
pointers, the planner and both runners follow them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ShapeName = Literal["month", "date", "draft_group", "season_to_date", "settled_date"]
MappingName = Literal["same", "month", "draft_groups", "window"]


@dataclass(frozen=True)
class Shape:
    name: ShapeName
    description: str
    keys: tuple[str, ...]  # the key fields, in key order (run last when run-scoped)
    run_scoped: bool  # one partition per run (as-of, profile, worlds), or one for all runs
    dynamic: bool = False  # partitions known only once an upstream step has run


MONTH = Shape("month", "a calendar month within a season", ("month", "run"), run_scoped=True)
DATE = Shape("date", "a game date", ("game_date", "run"), run_scoped=True)
DRAFT_GROUP = Shape(
    "draft_group",
    "a game date x draft group (dynamic: the groups `dk.salaries` lists)",
    ("game_date", "draft_group", "run"),
    run_scoped=True,
    dynamic=True,
)
SEASON_TO_DATE = Shape(
    "season_to_date", "a season-to-date window ending at a game date", ("game_date", "run"), run_scoped=True
)
SETTLED_DATE = Shape(
    "settled_date",
    "a game date once its results settle (one for all runs)",
    ("game_date",),
    run_scoped=False,
)
SHAPES: dict[str, Shape] = {s.name: s for s in (MONTH, DATE, DRAFT_GROUP, SEASON_TO_DATE, SETTLED_DATE)}

# The asset whose output lists a date's draft groups (output name, column): the source of the
# draft_group shape's partitions.
DRAFT_GROUP_SOURCE = ("dk.salaries", "data", "draft_group_id")

# How a partition of the consumer maps to partitions of an input:
MAPPINGS: dict[MappingName, str] = {
    "same": "the same slate: the consumer's keys the input's shape has (identity, or a draft group's date)",
    "month": "a date to the month that contains it",
    "draft_groups": "a date to all its draft groups (fan-in after the fan-out)",
    "window": "a date to every settled date of its season before it, settled by the consumer's as-of",
}


@dataclass(frozen=True)
class Input:
    """One input of a step: an upstream asset and how the step's partition maps onto it."""

    asset: str
    mapping: MappingName = "same"
    # Post-slate evaluation reads results that settle after the run's as-of, by design;
    # every other input is chosen at or before the consumer's as-of.
    after_as_of: bool = False


def check_mapping(consumer: Shape, producer: Shape, mapping: MappingName) -> str | None:
    """Why `mapping` cannot map a `consumer` partition onto `producer` partitions, or None."""
    if mapping == "same":
        own = set(consumer.keys) | {"game_date"} if consumer.name == "draft_group" else set(consumer.keys)
        needed = set(producer.keys) - ({"run"} if not producer.run_scoped else set())
        if consumer.name == "month" and producer.name != "month":
            return "a month cannot read a date-shaped input with `same`"
        if not needed <= own:
            return f"`same` needs the input's keys {sorted(needed)} in the consumer's {sorted(own)}"
        return None
    if "game_date" not in consumer.keys:
        return f"`{mapping}` maps a date, and a {consumer.name} partition has none"
    expected = {"month": "month", "draft_groups": "draft_group", "window": "settled_date"}[mapping]
    if producer.name != expected:
        return f"`{mapping}` reads a {expected} input, not a {producer.name} one"
    return None
