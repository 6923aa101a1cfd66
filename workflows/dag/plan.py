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

Resume decides each step partition from one listing, not reads: manifests are filed by day
first, and each record's name tells its status (docs/decisions.md D22); only a record its
listing cannot vouch for is read.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from steps.pipeline.settle import settle_time
from steps.runtime import asof, layout
from steps.runtime.errors import ManifestError, MissingInput
from steps.runtime.inputs import draft_groups
from steps.runtime.manifest import Listed
from steps.runtime.partition import (
    Partition,
    PartitionKey,
    check_token,
    month_of,
    parse_as_of,
    season_of,
    season_start,
)
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.store import Store
from steps.runtime.timefmt import to_key_ts
from workflows.dag.config import PipelineConfig
from workflows.dag.draft_groups import (
    add_draft_group_nodes,
    fan_in_nodes,
    groups_from_store,
    groups_need_read,
)
from workflows.dag.first_tips import slate_first_tips
from workflows.dag.graph import Graph
from workflows.dag.model import (
    AsOfMode,
    Plan,
    PlanError,
    PlannedPartition,
    PlannedStep,
    StepPlan,
    link,
    settled_key,
)
from workflows.dag.resume import (
    KeyRange,
    Records,
    day_ranges,
    decide_nodes,
    list_records,
    node_ranges,
)


def run_id_for(as_of: datetime, profile: str, worlds: int, force_tag: str | None = None) -> str:
    run_id = f"{to_key_ts(as_of)}-{profile}-w{worlds}"
    if force_tag:
        run_id += f"-f{force_tag}"
    return check_token(run_id, "run_id")


def date_range(start: date, end: date) -> list[date]:
    if end < start:
        raise PlanError(f"--end {end} is before --start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def day_schedules(store: Store, days: list[date], tz: ZoneInfo) -> dict[date, asof.Snapshot | asof.Gap]:
    """Each date's schedule as known at the start of that (ET) day (one listing)."""
    return asof.select_each(store, "schedule", {d: datetime.combine(d, time(0, 0), tzinfo=tz) for d in days})


def as_of_for(
    mode: AsOfMode, first_tip: datetime, config: PipelineConfig, custom: datetime | None
) -> datetime:
    if mode == "custom":
        if custom is None:
            raise PlanError("--as-of-mode custom needs --as-of-ts (e.g. 2025-01-15T22:00:00Z)")
        return custom
    lead = config.as_of.pretip_lead_minutes if mode == "pretip" else config.as_of.lock_lead_minutes
    return parse_as_of(first_tip - timedelta(minutes=lead))


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
    remember: bool = True,
) -> Plan:
    """Plan a range: its slates, and every step partition they need (`draft_groups` limits
    the draft-group steps to those groups). `remember`: keep the first tips read for the next
    plan (`first_tips`); a dry run passes False and writes nothing."""
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
    # The season before the range too, from the same listing: its slates are the settled
    # dates the range's windows read, and where their records lie.
    lead = date_range(season_start(start), start - timedelta(days=1)) if season_start(start) < start else []
    known = day_schedules(store, lead + days, tz)
    choices = {d: known[d] for d in days}
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The records are listed while the slates' first tips are read and their partitions
        # named: every day the plan can name a partition on, all assets (D22).
        scheduled = [d for d, c in known.items() if not isinstance(c, asof.Gap)]
        records = pool.submit(list_records, store, _expected_ranges(graph, start, scheduled))
        tips = slate_first_tips(store, choices, remember=remember)
        plan = _slates(graph, config, days, tips, as_of_mode, as_of_ts, worlds, profile, season, force_tag)
        planner = _Planner(
            plan, store, resume=resume, only_groups=set(draft_groups) if draft_groups else None
        )
        planner.build(records)
    return plan


def _expected_ranges(graph: Graph, start: date, scheduled: list[date]) -> list[KeyRange]:
    """The days the records of a range may lie under, cut into ranges of about a page each
    (`day_ranges`): each day with a schedule, in the range or before it in its season, counted
    as a slate whose every step ran (about a record per step: a draft group's make up for a
    settled date's), and each of their months' first days as its schedule's record."""
    per_slate = len(graph.order)
    counts = {d.replace(day=1): 1 for d in scheduled}
    counts.update({d: per_slate for d in scheduled} or {start: per_slate})
    return day_ranges(counts)


def _slates(
    graph: Graph,
    config: PipelineConfig,
    days: list[date],
    tips: dict[date, datetime],
    as_of_mode: AsOfMode,
    as_of_ts: datetime | None,
    worlds: int,
    profile: str,
    season: int | None,
    force_tag: str | None,
) -> Plan:
    """The plan's slates: each date with a first tip, its as-of and its run id."""
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
    return Plan(graph=graph, partitions=slates, no_slate=[d for d in days if d not in tips])


class _Planner:
    """Names every step partition the slates need and links each to what it reads."""

    def __init__(self, plan: Plan, store: Store, *, resume: bool, only_groups: set[str] | None) -> None:
        self.plan, self.store, self.resume, self.only_groups = plan, store, resume, only_groups
        self.graph = plan.graph
        self.months: dict[str, Partition] = {}
        self.windows: dict[date, list[date]] = {}
        self.settled: dict[date, Partition] = {}
        # A slate's partition as each shape names it, made once and shared by the slate's
        # steps of that shape (a season's plan asks for thousands).
        self.shaped: dict[tuple[date, str], tuple[Partition, PartitionKey]] = {}
        readers: dict[str, set[str]] = {}
        for a in self.graph.order:
            for item in self.graph.specs[a].inputs:
                readers.setdefault(item.asset, set()).add(item.mapping)
        self.read_as: dict[str, set[str]] = readers  # asset -> the mappings its readers use

    def build(self, listing: Future[Records]) -> None:
        """`listing`: the records over the range's days, every asset's (the draft-group steps'
        among them, before the groups are known), listed while the partitions are named; nodes
        it does not cover are listed too."""
        self._name_partitions()
        listed = listing.result()
        nodes = list(self.plan.nodes.values())
        slates = [s.partition for s in self.plan.partitions]
        missing = [n for n in nodes if not listed.covers(n.run_prefix)]
        records = listed.merge(list_records(self.store, node_ranges(missing))) if missing else listed
        stored = self._stored_groups(slates, records)
        decide_nodes(self.store, nodes, resume=self.resume, records=records)
        waiting = fan_in_nodes(self.plan)
        added = []
        for p in slates:
            groups = self._known_groups(p, stored.get(p.key))
            if groups is not None:
                added += add_draft_group_nodes(
                    self.plan, p, groups, only=self.only_groups, waiting=waiting.get(p.key, [])
                )
        decide_nodes(self.store, added, resume=self.resume, records=records)
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
                for partition, key, day in self._partitions(asset, slate.partition):
                    self._add(asset, partition, key, day)

    def _partitions(self, asset: str, slate: Partition) -> list[tuple[Partition, PartitionKey, date | None]]:
        """The partitions of `asset` that one slate needs, with their keys (window dates: the
        settled slates its season-to-date steps read, before the range too). Each is made
        once and shared: a season's windows name each settled slate once per slate after it."""
        shape = self.graph.specs[asset].shape
        day = slate.game_date
        if shape.name == "month":
            month = self.months[month_of(day)]
            return [(month, month.key, None)]
        if shape.name == "draft_group":
            return []  # known once the slate's draft groups are
        if shape.name == "settled_date":
            mappings = self.read_as.get(asset, set())
            wanted = [day] if not mappings or "same" in mappings else []
            wanted += self.windows.get(day, []) if "window" in mappings else []
            return [(self._settled(x), settled_key(x), x if x == day else None) for x in wanted]
        if (day, shape.name) not in self.shaped:
            shaped = slate.model_copy(update={"shape": shape.name})
            self.shaped[day, shape.name] = shaped, shaped.key
        return [(*self.shaped[day, shape.name], day)]

    def _settled(self, day: date) -> Partition:
        if day not in self.settled:
            self.settled[day] = settled_partition(day)
        return self.settled[day]

    def _add(self, asset: str, partition: Partition, key: PartitionKey, slate: date | None) -> None:
        node_id = (asset, key)
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
        seasons: dict[int, list[date]] = {}
        for x in sorted(f[1] for f in folders if f is not None):
            seasons.setdefault(season_of(x), []).append(x)
        settles = {season: [settle_time(x) for x in xs] for season, xs in seasons.items()}
        out = {}
        for slate in self.plan.partitions:
            p = slate.partition
            season = season_of(p.game_date)
            xs = seasons.get(season, [])
            # Settling follows the date, so both limits cut the season's dates at one point.
            before = bisect.bisect_left(xs, p.game_date)
            settled = bisect.bisect_right(settles.get(season, []), p.run_as_of_ts)
            out[p.game_date] = xs[: min(before, settled)]
        return out

    def _stored_groups(
        self, slates: list[Partition], records: Records
    ) -> dict[PartitionKey, list[str] | None]:
        """Each slate's draft groups as stored: its run's `dk.salaries` output when the plan
        has that step (only worth reading when resuming), else the run it would read."""
        planned = DRAFT_GROUP_SOURCE[0] in self.graph.specs
        if planned and not self.resume:
            return {}

        # Each slate's latest `dk.salaries` record, as listed, looked up once.
        listed = {
            s.key: records.latest.get(layout.manifest_run_prefix(DRAFT_GROUP_SOURCE[0], s.key))
            if planned
            else None
            for s in slates
        }

        def one(slate: Partition) -> list[str] | None:
            if planned:
                found = listed[slate.key]
                if found is None:
                    return None  # no manifest: dk.salaries runs, and lists its groups then
                return groups_from_store(self.store, slate.key, found)
            try:
                return draft_groups(self.store, slate)
            except (MissingInput, ManifestError):
                return None

        # The names of the records usually tell; only the others are read, 8 at a time.
        found = {s.key: one(s) for s in slates if planned and not self._reads(listed[s.key])}
        unread = [s for s in slates if s.key not in found]
        with ThreadPoolExecutor(max_workers=8) as pool:
            found.update(zip([s.key for s in unread], pool.map(one, unread), strict=True))
        return found

    @staticmethod
    def _reads(listed: Listed | None) -> bool:
        return listed is not None and groups_need_read(listed)

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
