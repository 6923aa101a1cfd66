"""Resume decisions: each step partition's latest state, from one listing of the records' names over the range's days (D22), opening a record only where the listing cannot vouch for it."""

from __future__ import annotations

import bisect
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

from steps.runtime import layout
from steps.runtime.errors import ManifestError, ObjectNotFound
from steps.runtime.manifest import (
    STATUSES,
    Listed,
    Manifest,
    Status,
    latest_records,
    partition_identity,
    read_record,
)
from steps.runtime.partition import Partition
from steps.runtime.store import Store
from steps.runtime.store.base import prefix_end
from workflows.dag.model import NodeId, PlannedStep, StepPlan


@dataclass(frozen=True)
class Seen:
    """What the plan knows of a run's latest manifest: from its record's name in a listing, or,
    where the listing cannot vouch for it, from the record itself."""

    status: Status | None  # None: it cannot be reused as it stands (`problem` says why)
    error: str = ""  # a failed attempt's error type
    problem: str = ""


def seen_in(manifest: Manifest, planned: Partition) -> Seen:
    differ = manifest.partition.differences(planned)
    if differ:
        return Seen(
            None,
            problem=f"its manifest was made for another partition ({', '.join(differ)} differ); "
            "the step refuses this run id",
        )
    return Seen(manifest.status, manifest.error.type if manifest.error else "")


def read_seen(store: Store, unclear: list[tuple[PlannedStep, str]]) -> dict[NodeId, Seen | None]:
    """One GET per record, in parallel: only for the nodes a listing could not decide."""

    def one(item: tuple[PlannedStep, str]) -> Seen | None:
        node, key = item
        try:
            return seen_in(read_record(store, key), node.partition)
        except ObjectNotFound:
            return None
        except ManifestError as exc:
            return Seen(None, problem=f"unreadable manifest, a rerun writes a new one ({exc})")

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(zip([n.id for n, _ in unclear], pool.map(one, unclear), strict=True))


KeyRange = tuple[str, str]  # [first, stop): the keys a listing covers


@dataclass
class Records:
    """What listings of manifests/ showed: the key ranges listed, and in them each run's
    latest record."""

    ranges: list[KeyRange] = field(default_factory=list)
    latest: dict[str, Listed] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._sorted = sorted(self.ranges)

    def covers(self, run: str) -> bool:
        # Asked once per node of a season's plan: the listed range starting last at or
        # before `run` is the only one that can hold it when ranges do not overlap, and
        # overlapping ones are checked back to the first.
        at = bisect.bisect_right(self._sorted, (run, "\uffff"))
        end = prefix_end(run)
        return any(first <= run and end <= stop for first, stop in reversed(self._sorted[:at]))

    def merge(self, other: Records) -> Records:
        return Records(self.ranges + other.ranges, {**self.latest, **other.latest})


def day_range(first: date, last: date) -> KeyRange:
    """Every record of every asset filed under the days from `first` to `last` (D22)."""
    return layout.manifest_day_prefix(first), prefix_end(layout.manifest_day_prefix(last))


LIST_PAGE = 1000  # keys in an S3 list page


def day_ranges(counts: Mapping[date, int]) -> list[KeyRange]:
    """The days from the first to the last counted, cut into ranges of at most a page of
    expected records each, so that the ranges are listed side by side at no more pages than
    one listing. The cuts fall between days, so the ranges cover every day once, together."""
    days = sorted(counts)
    cuts, filled = days[:1], 0
    for day in days:
        if filled and filled + counts[day] > LIST_PAGE:
            cuts.append(day)
            filled = 0
        filled += counts[day]
    starts = [layout.manifest_day_prefix(d) for d in cuts]
    stops = [*starts[1:], day_range(days[-1], days[-1])[1]] if days else []
    return list(zip(starts, stops, strict=True))


def node_ranges(nodes: Iterable[PlannedStep]) -> list[KeyRange]:
    """`day_ranges` of the days the nodes are filed under, a record each."""
    return day_ranges(Counter(layout.manifest_day(n.partition.key) for n in nodes))


def list_records(store: Store, ranges: list[KeyRange]) -> Records:
    """One listing per range, 8 at a time; each starts at its first key and stops at its end."""

    def one(bounds: KeyRange) -> dict[str, Listed]:
        first, stop = bounds
        # The range's own prefix, character by character (e.g. `manifests/2024-1`): MinIO walks
        # only what lies under the prefix it is given, not the whole of manifests/.
        prefix = os.path.commonprefix([first, stop])  # noqa: RUF071
        return latest_records(store.list_after(prefix, first, stop))

    records = Records(ranges=list(ranges))
    with ThreadPoolExecutor(max_workers=8) as pool:
        for found in pool.map(one, ranges):
            records.latest.update(found)
    return records


def observe(
    store: Store, nodes: list[PlannedStep], records: Records | None = None
) -> dict[NodeId, Seen | None]:
    """Each node's latest record as its name tells it, from the listings in `records` (and one
    more listing for the nodes they do not cover); a node whose record its listing cannot vouch
    for (bytes changed since it was named, another partition's) is read, that node alone."""
    runs = {n.run_prefix: n for n in nodes}
    records = records or Records()
    missing = [n for r, n in runs.items() if not records.covers(r)]
    if missing:
        records = records.merge(list_records(store, node_ranges(missing)))
    seen: dict[NodeId, Seen | None] = {}
    unclear = []
    identities: dict[int, str] = {}  # a slate's steps of one shape share one partition object
    for run, node in runs.items():
        found = records.latest.get(run)
        if found is None:
            seen[node.id] = None
        elif (
            found.vouched
            and found.name.status in STATUSES
            and found.name.identity == _identity(node.partition, identities)
        ):
            seen[node.id] = Seen(found.name.status, found.name.error)
        else:
            unclear.append((node, found.key))
    seen.update(read_seen(store, unclear))
    return seen


def _identity(partition: Partition, known: dict[int, str]) -> str:
    if id(partition) not in known:
        known[id(partition)] = partition_identity(partition)
    return known[id(partition)]


def decide(asset: str, seen: Seen | None, *, resume: bool) -> StepPlan:
    if seen is None:
        return StepPlan(asset, "run", "no manifest yet")
    if seen.status is None:
        return StepPlan(asset, "run", seen.problem)
    if seen.status == "success":
        if resume:
            return StepPlan(asset, "reuse", "success manifest exists")
        return StepPlan(asset, "run", "--no-resume: recompute into a new attempt (same run id)")
    if seen.status == "failed":
        return StepPlan(asset, "run", f"previous attempt failed ({seen.error or 'error'})")
    if seen.status == "not_promoted":
        return StepPlan(asset, "run", "previously not promoted")
    return StepPlan(asset, "run", "previously not due")


def decide_nodes(
    store: Store, nodes: list[PlannedStep], *, resume: bool, records: Records | None = None
) -> None:
    if not nodes:
        return
    seen = observe(store, nodes, records)
    for node in nodes:
        found = decide(node.asset, seen[node.id], resume=resume)
        node.action, node.reason = found.action, found.reason
