"""From a date range to the partitions each step needs, deduplicated, with why each runs.

Every asset has its own partition shape (steps/runtime/shapes.py). For each slate date in the
range the planner names the partitions each step needs, through each input's mapping: a
month's schedule once per range (as of the range's first slate in that month, so no slate
reads a schedule from after its own as-of), every settled slate of the season that a
season-to-date window reads (inside the range or before it), and a slate's draft groups once
its `dk.salaries` has listed them (at plan time when it already succeeded, else by the
runner when it does).

Run-id policy: `<as-of, compact UTC>-<profile>-w<worlds>`, e.g. `20250115T233000Z-base-w1000`.
It is a pure function of what determines the outputs, so rerunning a range (after a crash,
or as a backfill of days a daily run already did) lands on the same run ids, and resume
reuses what already succeeded. `--force` adds `-f<timestamp>`: a new, separate run, leaving
the old one intact (outputs are immutable once a success manifest names them).

Resume decides each step partition from listings, not reads: one listing per step over the
range, whose marks name each run's status beside its manifest (docs/decisions.md D19); only a
manifest no mark vouches for is read.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from steps.pipeline.settle import settle_time
from steps.runtime import asof, layout
from steps.runtime.errors import CorruptObject, ManifestError, MissingInput, ObjectNotFound, PipelineError
from steps.runtime.inputs import draft_groups
from steps.runtime.manifest import STATUSES, Manifest, Status, latest_marks, partition_identity, read_manifest
from steps.runtime.partition import Partition, PartitionKey, check_token, month_of, parse_as_of, season_of
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.store import Store
from steps.runtime.store.base import prefix_end
from steps.runtime.timefmt import to_key_ts
from workflows.dag.config import PipelineConfig
from workflows.dag.graph import Graph

AsOfMode = Literal["pretip", "lock", "custom"]
Action = Literal["run", "reuse"]  # reuse: its success manifest stands (docs/decisions.md D21)
NodeId = tuple[str, PartitionKey]


class PlanError(PipelineError):
    """The requested range or options cannot be planned."""


@dataclass(frozen=True)
class StepPlan:
    asset: str
    action: Action
    reason: str


@dataclass
class PlannedStep:
    """One partition of one step that the range needs."""

    asset: str
    partition: Partition
    action: Action
    reason: str
    slate: date | None  # the slate it belongs to; None: read by slates but not one of them
    needs: list[NodeId] = field(default_factory=list)  # must succeed first
    after: list[NodeId] = field(default_factory=list)  # must finish first (a window: any outcome)
    # Must not fail: a fan-in waits for all of its slate's draft-group steps, as Argo's task
    # over the whole fan-out does (one that stopped short, not_promoted, holds nothing back).
    gate: list[NodeId] = field(default_factory=list)
    fan_in: PartitionKey | None = None  # waits for this slate's draft groups to be known

    @property
    def id(self) -> NodeId:
        return (self.asset, self.partition.key)

    @property
    def label(self) -> str:
        return node_label(self.asset, self.partition.key)


def node_label(asset: str, key: PartitionKey) -> str:
    """How a step partition is named to people: `ingest.schedule 2025-01`,
    `finalize.unified 2025-01-12 / draft group 118223`."""
    return f"{asset} {key.describe()}"


@dataclass
class PlannedPartition:
    """One slate of the range: a date and the run it gets."""

    partition: Partition  # the date-shaped partition of the slate's run
    first_tip: datetime
    steps: dict[str, StepPlan]  # the slate's date-level steps, by asset (kept for reading)
    note: str = ""

    @property
    def to_run(self) -> list[str]:
        return [a for a, s in self.steps.items() if s.action == "run"]


@dataclass
class Plan:
    graph: Graph
    partitions: list[PlannedPartition]
    no_slate: list[date] = field(default_factory=list)
    nodes: dict[NodeId, PlannedStep] = field(default_factory=dict)  # in plan order
    draft_groups: dict[PartitionKey, list[str]] = field(default_factory=dict)  # known so far

    @property
    def steps_to_run(self) -> int:
        return sum(1 for n in self.nodes.values() if n.action == "run")

    def slate_nodes(self, day: date | None) -> list[PlannedStep]:
        return [n for n in self.nodes.values() if n.slate == day]

    def slates_with_work(self) -> list[PlannedPartition]:
        """Slates with a step to run, or whose draft groups are not known yet (their steps
        may still need to run once `dk.salaries` lists them)."""
        busy = {n.slate for n in self.nodes.values() if n.action == "run"}
        return [
            p
            for p in self.partitions
            if p.partition.game_date in busy or p.partition.key not in self.draft_groups
        ]


def run_id_for(as_of: datetime, profile: str, worlds: int, force_tag: str | None = None) -> str:
    run_id = f"{to_key_ts(as_of)}-{profile}-w{worlds}"
    if force_tag:
        run_id += f"-f{force_tag}"
    return check_token(run_id, "run_id")


def date_range(start: date, end: date) -> list[date]:
    if end < start:
        raise PlanError(f"--end {end} is before --start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def read_column(store: Store, key: str, column: str) -> pd.Series:
    """One column of a parquet object. The planner reads a column of two objects per slate (its
    schedule's tips, its draft groups); building whole frames costs several times as much."""
    data = store.get_bytes(key)
    try:
        return pq.read_table(io.BytesIO(data), columns=[column]).column(0).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise CorruptObject(f"{store.describe(key)} is not readable parquet: {exc}") from None


def slate_first_tips(store: Store, days: list[date], tz: ZoneInfo) -> dict[date, datetime]:
    """First tip per date, from the schedule as known at the start of that (ET) day."""
    tips: dict[date, datetime] = {}
    choices = asof.select_each(
        store, "schedule", {d: datetime.combine(d, time(0, 0), tzinfo=tz) for d in days}
    )

    def one(day: date) -> tuple[date, datetime | None]:
        choice = choices[day]
        if isinstance(choice, asof.Gap):
            return day, None
        tips = read_column(store, choice.key, "tip_ts")
        if tips.empty:
            return day, None
        return day, tips.min().to_pydatetime()

    with ThreadPoolExecutor(max_workers=8) as pool:
        for day, tip in pool.map(one, days):
            if tip is not None:
                tips[day] = tip
    return tips


def as_of_for(
    mode: AsOfMode, first_tip: datetime, config: PipelineConfig, custom: datetime | None
) -> datetime:
    if mode == "custom":
        if custom is None:
            raise PlanError("--as-of-mode custom needs --as-of-ts (e.g. 2025-01-15T22:00:00Z)")
        return custom
    lead = config.as_of.pretip_lead_minutes if mode == "pretip" else config.as_of.lock_lead_minutes
    return parse_as_of(first_tip - timedelta(minutes=lead))


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


def make_plan(
    store: Store,
    graph: Graph,
    config: PipelineConfig,
    *,
    start: date,
    end: date,
    as_of_mode: AsOfMode = "pretip",
    as_of_ts: datetime | None = None,
    worlds: int | None = None,
    profile: str | None = None,
    season: int | None = None,
    resume: bool = True,
    force_tag: str | None = None,
    draft_groups: Iterable[str] | None = None,
) -> Plan:
    """Plan a range: its slates, and every step partition they need (`draft_groups` limits
    the draft-group steps to those groups)."""
    if as_of_mode == "custom" and as_of_ts is None:
        raise PlanError("--as-of-mode custom needs --as-of-ts (e.g. 2025-01-15T22:00:00Z)")
    if as_of_mode != "custom" and as_of_ts is not None:
        raise PlanError("--as-of-ts is only used with --as-of-mode custom")
    worlds = worlds if worlds is not None else config.defaults.worlds
    if worlds <= 0:
        raise PlanError(f"--worlds must be positive, got {worlds}")
    profile = check_token(profile or config.defaults.profile, "profile")
    tz = ZoneInfo(config.timezone)
    days = date_range(start, end)
    tips = slate_first_tips(store, days, tz)
    slates: list[PlannedPartition] = []
    for day in days:
        if day not in tips:
            continue
        as_of = as_of_for(as_of_mode, tips[day], config, as_of_ts)
        partition = Partition.build(
            game_date=day,
            run_as_of_ts=as_of,
            run_id=run_id_for(as_of, profile, worlds, force_tag),
            season=season if season is not None else season_of(day),
            profile=profile,
            worlds=worlds,
        )
        slates.append(PlannedPartition(partition=partition, first_tip=tips[day], steps={}))
    plan = Plan(graph=graph, partitions=slates, no_slate=[d for d in days if d not in tips])
    _Planner(plan, store, resume=resume, only_groups=set(draft_groups) if draft_groups else None).build()
    return plan


class _Planner:
    """Names every step partition the slates need and links each to what it reads."""

    def __init__(self, plan: Plan, store: Store, *, resume: bool, only_groups: set[str] | None) -> None:
        self.plan, self.store, self.resume, self.only_groups = plan, store, resume, only_groups
        self.graph = plan.graph
        self.months: dict[str, Partition] = {}
        self.windows: dict[date, list[date]] = {}
        self.settled: dict[date, Partition] = {}
        readers: dict[str, set[str]] = {}
        for a in self.graph.order:
            for item in self.graph.specs[a].inputs:
                readers.setdefault(item.asset, set()).add(item.mapping)
        self.read_as: dict[str, set[str]] = readers  # asset -> the mappings its readers use

    def build(self) -> None:
        self._name_partitions()
        nodes = list(self.plan.nodes.values())
        slates = [s.partition for s in self.plan.partitions]
        source = [n for n in nodes if n.asset == DRAFT_GROUP_SOURCE[0]]
        others = [n for n in nodes if n.asset != DRAFT_GROUP_SOURCE[0]]
        # The draft groups' source is listed first, then its groups are read while everything
        # else is listed (draft-group steps over the range's dates, before the groups are known).
        with ThreadPoolExecutor(max_workers=1) as pool:
            listing = pool.submit(list_marks, self.store, run_ranges(others) + self._draft_group_ranges())
            marks = list_marks(self.store, run_ranges(source))
            stored = self._stored_groups(slates, marks)
            marks = marks.merge(listing.result())
        decide_nodes(self.store, nodes, resume=self.resume, marks=marks)
        waiting = fan_in_nodes(self.plan)
        added = []
        for p in slates:
            groups = self._known_groups(p, stored.get(p.key))
            if groups is not None:
                added += add_draft_group_nodes(
                    self.plan, p, groups, only=self.only_groups, waiting=waiting.get(p.key, [])
                )
        decide_nodes(self.store, added, resume=self.resume, marks=marks)
        by_slate: dict[date, list[PlannedStep]] = {}
        for n in self.plan.nodes.values():
            if n.slate is not None and n.partition.draft_group_id is None:
                by_slate.setdefault(n.slate, []).append(n)
        for slate in self.plan.partitions:
            slate.steps = {
                n.asset: StepPlan(n.asset, n.action, n.reason)
                for n in by_slate.get(slate.partition.game_date, [])
            }

    def _name_partitions(self) -> None:
        for slate in self.plan.partitions:  # a month's run is the range's first slate in it
            p = slate.partition
            self.months.setdefault(
                month_of(p.game_date),
                p.model_copy(
                    update={
                        "shape": "month",
                        "month": month_of(p.game_date),
                        "game_date": p.game_date.replace(day=1),
                    }
                ),
            )
        if any(i.mapping == "window" for a in self.graph.order for i in self.graph.specs[a].inputs):
            self.windows = self._windows()
        for asset in self.graph.order:
            for slate in self.plan.partitions:
                for partition, day in self._partitions(asset, slate.partition):
                    self._add(asset, partition, day)

    def _draft_group_ranges(self) -> list[KeyRange]:
        """The key range of each draft-group step's manifests over the range's slates, listed
        before the groups are known."""
        days = [s.partition.game_date for s in self.plan.partitions]
        if not days:
            return []
        return [
            (layout.manifest_date_prefix(a, min(days)), prefix_end(layout.manifest_date_prefix(a, max(days))))
            for a in self.graph.order
            if self.graph.specs[a].shape.name == "draft_group"
        ]

    def _partitions(self, asset: str, slate: Partition) -> list[tuple[Partition, date | None]]:
        """The partitions of `asset` that one slate needs (window dates: the settled slates
        its season-to-date steps read, before the range too)."""
        shape = self.graph.specs[asset].shape
        day = slate.game_date
        if shape.name == "month":
            return [(self.months[month_of(day)], None)]
        if shape.name == "draft_group":
            return []  # known once the slate's draft groups are
        if shape.name == "settled_date":
            mappings = self.read_as.get(asset, set())
            wanted = [day] if not mappings or "same" in mappings else []
            wanted += self.windows.get(day, []) if "window" in mappings else []
            return [(self._settled(x), x if x == day else None) for x in wanted]
        return [(slate.model_copy(update={"shape": shape.name}), day)]

    def _settled(self, day: date) -> Partition:
        if day not in self.settled:
            self.settled[day] = settled_partition(day)
        return self.settled[day]

    def _add(self, asset: str, partition: Partition, slate: date | None) -> None:
        node_id = (asset, partition.key)
        found = self.plan.nodes.get(node_id)
        if found is not None:
            if slate is not None and found.slate is None:
                found.slate = slate  # a window date that is also a slate of the range
            return
        node = PlannedStep(asset, partition, "run", "", slate)
        link(self.plan, node, self.months, self.windows)
        self.plan.nodes[node_id] = node

    def _windows(self) -> dict[date, list[date]]:
        """For each slate: the settled slates of its season before it, settled by its as-of."""
        folders = (
            layout.parse_landing_date_prefix(d)
            for d in self.store.list_dirs(layout.landing_source_prefix("schedule"))
        )
        landed = sorted(f[1] for f in folders if f is not None)
        settles = [(x, season_of(x), settle_time(x)) for x in landed]
        out = {}
        for slate in self.plan.partitions:
            p = slate.partition
            season = season_of(p.game_date)
            out[p.game_date] = [
                x
                for x, x_season, settled in settles
                if x_season == season and x < p.game_date and settled <= p.run_as_of_ts
            ]
        return out

    def _stored_groups(self, slates: list[Partition], marks: Marks) -> dict[PartitionKey, list[str] | None]:
        """Each slate's draft groups as stored: its run's `dk.salaries` output when the plan
        has that step (only worth reading when resuming), else the run it would read."""
        planned = DRAFT_GROUP_SOURCE[0] in self.graph.specs
        if planned and not self.resume:
            return {}

        def one(slate: Partition) -> list[str] | None:
            if planned:
                run = layout.manifest_run_prefix(DRAFT_GROUP_SOURCE[0], slate.key)
                if run not in marks.latest:
                    return None  # no manifest: dk.salaries runs, and lists its groups then
                return groups_from_store(self.store, slate.key, marks.latest[run])
            try:
                return draft_groups(self.store, slate)
            except (MissingInput, ManifestError):
                return None

        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(zip([s.key for s in slates], pool.map(one, slates), strict=True))

    def _known_groups(self, slate: Partition, stored: list[str] | None) -> list[str] | None:
        """A slate's draft groups, if known now: from this run's `dk.salaries` when the plan
        reuses it, or, when the plan does not run it at all, from the run it would read."""
        node = self.plan.nodes.get((DRAFT_GROUP_SOURCE[0], slate.key))
        if node is None or node.action == "reuse":
            return stored
        return None


def settled_partition(day: date) -> Partition:
    """A settled slate, as of its settle time, the same for every run."""
    return Partition.build(
        shape="settled_date",
        game_date=day,
        run_as_of_ts=settle_time(day),
        run_id=None,
        season=season_of(day),
    )


def link(
    plan: Plan, node: PlannedStep, months: dict[str, Partition], windows: dict[date, list[date]]
) -> None:
    """What `node` reads among the plan's nodes: `needs` (must succeed) and `after` (a window:
    must finish, whatever its outcome, so the window is the same however the run is ordered)."""
    from steps.runtime.inputs import mapped_key

    graph = plan.graph
    p = node.partition
    for item in graph.specs[node.asset].inputs:
        if item.asset not in graph.specs:
            continue  # read from an earlier run
        producer = graph.specs[item.asset].shape
        if item.mapping == "month":
            node.needs.append((item.asset, months[month_of(p.game_date)].key))
        elif item.mapping == "window":
            node.after += [(item.asset, PartitionKey(game_date=x)) for x in windows.get(p.game_date, [])]
        elif item.mapping == "draft_groups":
            node.fan_in = PartitionKey(game_date=p.game_date, run_id=p.run_id)
            groups = plan.draft_groups.get(node.fan_in)
            if groups is not None:
                node.needs += [
                    (item.asset, node.fan_in.model_copy(update={"draft_group_id": g})) for g in groups
                ]
        else:
            key = mapped_key(p, producer, item)
            if (item.asset, key) in plan.nodes:
                node.needs.append((item.asset, key))


def decide_nodes(store: Store, nodes: list[PlannedStep], *, resume: bool, marks: Marks | None = None) -> None:
    if not nodes:
        return
    seen = observe(store, nodes, marks)
    for node in nodes:
        found = decide(node.asset, seen[node.id], resume=resume)
        node.action, node.reason = found.action, found.reason


def groups_from_store(
    store: Store, key: PartitionKey, mark: layout.ManifestMark | None = None
) -> list[str] | None:
    """The draft groups `dk.salaries` listed for a slate's run, if it succeeded. With the mark
    that vouches for its manifest, the output of the attempt it names is read without reading
    the manifest (which is read when there is no such mark, or no such output)."""
    asset, output, column = DRAFT_GROUP_SOURCE
    if mark is not None and mark.status != "success":
        return None
    groups = None
    if mark is not None and mark.attempt:
        with contextlib.suppress(ObjectNotFound):
            groups = read_column(store, layout.output_key(asset, key, mark.attempt, output), column)
    if groups is None:
        try:
            manifest = read_manifest(store, asset, key)
        except ManifestError:
            return None
        if manifest is None or manifest.status != "success":
            return None
        groups = read_column(store, manifest.output(output).path, column)
    return sorted(str(g) for g in groups.dropna().unique())


def expand_draft_groups(
    plan: Plan,
    store: Store,
    key: PartitionKey,
    groups: list[str],
    *,
    resume: bool,
    only: set[str] | None = None,
) -> list[PlannedStep]:
    """Add a slate's draft-group step partitions, once its draft groups are known, and make
    the slate's fan-in steps wait for them. Returns the new nodes, decided."""
    slate = next(s.partition for s in plan.partitions if s.partition.key == key)
    added = add_draft_group_nodes(plan, slate, groups, only=only, waiting=fan_in_nodes(plan).get(key, []))
    decide_nodes(store, added, resume=resume)
    return added


def fan_in_nodes(plan: Plan) -> dict[PartitionKey, list[PlannedStep]]:
    """The steps that wait for a slate's draft groups, by slate."""
    out: dict[PartitionKey, list[PlannedStep]] = {}
    for node in plan.nodes.values():
        if node.fan_in is not None:
            out.setdefault(node.fan_in, []).append(node)
    return out


def add_draft_group_nodes(
    plan: Plan,
    slate: Partition,
    groups: list[str],
    *,
    only: set[str] | None = None,
    waiting: list[PlannedStep],
) -> list[PlannedStep]:
    """A slate's draft-group step partitions, linked but not decided yet; `waiting` are the
    slate's fan-in steps (`fan_in_nodes`), which now wait for them."""
    key = slate.key
    if key in plan.draft_groups:
        return []
    chosen = [g for g in groups if only is None or g in only]
    plan.draft_groups[key] = chosen
    added = []
    for asset in plan.graph.order:
        if plan.graph.specs[asset].shape.name != "draft_group":
            continue
        for group in chosen:
            partition = slate.model_copy(update={"shape": "draft_group", "draft_group_id": group})
            node = PlannedStep(asset, partition, "run", "", slate.game_date)
            link(plan, node, {}, {})
            plan.nodes[node.id] = node
            added.append(node)
    for node in waiting:
        if not any(n[1].draft_group_id for n in node.needs):
            link_fan_in(plan, node, chosen)
    return added


def link_fan_in(plan: Plan, node: PlannedStep, groups: list[str]) -> None:
    if node.fan_in is None:
        return
    for item in plan.graph.specs[node.asset].inputs:
        if item.mapping == "draft_groups" and item.asset in plan.graph.specs:
            node.needs += [(item.asset, node.fan_in.model_copy(update={"draft_group_id": g})) for g in groups]
    node.gate = [
        (a, node.fan_in.model_copy(update={"draft_group_id": g}))
        for a in plan.graph.order
        if plan.graph.specs[a].shape.name == "draft_group"
        for g in groups
        if (a, node.fan_in.model_copy(update={"draft_group_id": g})) not in node.needs
    ]


def source_selections(store: Store, graph: Graph, planned: PlannedPartition) -> dict[str, str]:
    """For a dry run: the snapshot each as-of source input would select, or the gap."""
    out: dict[str, str] = {}
    # Sources read as of the run (settled ones are read as of their settle time).
    as_of_assets = [a for a in graph.order if graph.specs[a].shape.name in ("date", "month", "draft_group")]
    sources = sorted({s for a in as_of_assets for s in graph.specs[a].sources if s != "boxscores"})
    for source in sources:
        choice = asof.select_as_of(store, source, planned.partition.game_date, planned.partition.run_as_of_ts)
        out[source] = (
            choice.reason
            if isinstance(choice, asof.Gap)
            else layout.landing_snapshot_prefix(source, choice.game_date, choice.snapshot_ts)
        )
    return out
