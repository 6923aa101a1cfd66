"""Resume decisions: each step partition's latest state, from a listing of manifest marks (D19), opening a manifest only where the listing cannot vouch for it."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from steps.runtime import layout
from steps.runtime.errors import ManifestError
from steps.runtime.manifest import STATUSES, Manifest, Status, latest_marks, partition_identity, read_manifest
from steps.runtime.partition import Partition
from steps.runtime.store import Store
from steps.runtime.store.base import prefix_end
from workflows.dag.model import NodeId, PlannedStep, StepPlan


@dataclass(frozen=True)
class Seen:
    """What the plan knows of a run's latest manifest: from its mark in a listing, or, where
    the listing cannot vouch for it, from the manifest itself."""

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


def read_seen(store: Store, nodes: list[PlannedStep]) -> dict[NodeId, Seen | None]:
    """One GET per node, in parallel: only for the nodes a listing could not decide."""

    def one(node: PlannedStep) -> Seen | None:
        try:
            manifest = read_manifest(store, node.asset, node.partition.key)
        except ManifestError as exc:
            return Seen(None, problem=f"unreadable manifest, rewritten by the rerun ({exc})")
        return None if manifest is None else seen_in(manifest, node.partition)

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(zip([n.id for n in nodes], pool.map(one, nodes), strict=True))


KeyRange = tuple[str, str]  # [first, stop): the keys a listing covers


@dataclass
class Marks:
    """What listings of manifests/ showed: the key ranges listed, and in them every run that
    has a manifest.json, with the mark that vouches for it (or None)."""

    ranges: list[KeyRange] = field(default_factory=list)
    latest: dict[str, layout.ManifestMark | None] = field(default_factory=dict)

    def covers(self, run: str) -> bool:
        return any(first <= run and prefix_end(run) <= stop for first, stop in self.ranges)

    def merge(self, other: Marks) -> Marks:
        return Marks(self.ranges + other.ranges, {**self.latest, **other.latest})


def run_ranges(nodes: Iterable[PlannedStep]) -> list[KeyRange]:
    """One range per asset, from its first run's manifests to past its last's."""
    by_asset: dict[str, list[str]] = {}
    for n in nodes:
        by_asset.setdefault(n.asset, []).append(layout.manifest_run_prefix(n.asset, n.partition.key))
    return [(min(r), max(prefix_end(x) for x in r)) for r in by_asset.values()]


def list_marks(store: Store, ranges: list[KeyRange]) -> Marks:
    """One listing per range, in parallel. Each starts at its first key and stops at its end,
    whatever else the asset holds (S3 list pages carry 1,000 keys)."""

    def one(bounds: KeyRange) -> dict[str, layout.ManifestMark | None]:
        first, stop = bounds
        folder = posixpath.commonpath([first, stop]) + "/"
        return latest_marks(store.list_after(folder, first, stop))

    marks = Marks(ranges=list(ranges))
    with ThreadPoolExecutor(max_workers=8) as pool:
        for found in pool.map(one, ranges):
            marks.latest.update(found)
    return marks


def observe(store: Store, nodes: list[PlannedStep], marks: Marks | None = None) -> dict[NodeId, Seen | None]:
    """Each node's latest manifest as its mark tells it, from the listings in `marks` (and one
    listing per asset for the nodes they do not cover); a node whose manifest no mark vouches
    for (none written yet, a stale one, another partition's) is read, that node alone."""
    runs = {layout.manifest_run_prefix(n.asset, n.partition.key): n for n in nodes}
    marks = marks or Marks()
    missing = [n for r, n in runs.items() if not marks.covers(r)]
    if missing:
        marks = marks.merge(list_marks(store, run_ranges(missing)))
    seen: dict[NodeId, Seen | None] = {}
    unclear = []
    for run, node in runs.items():
        mark = marks.latest.get(run)
        if run not in marks.latest:
            seen[node.id] = None
        elif mark and mark.status in STATUSES and mark.identity == partition_identity(node.partition):
            seen[node.id] = Seen(mark.status, mark.error)
        else:
            unclear.append(node)
    seen.update(read_seen(store, unclear))
    return seen


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


def decide_nodes(store: Store, nodes: list[PlannedStep], *, resume: bool, marks: Marks | None = None) -> None:
    if not nodes:
        return
    seen = observe(store, nodes, marks)
    for node in nodes:
        found = decide(node.asset, seen[node.id], resume=resume)
        node.action, node.reason = found.action, found.reason
