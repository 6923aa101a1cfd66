"""From a date range to partitions and, per partition, which steps run and why.

Run-id policy: `<as-of, compact UTC>-<profile>-w<worlds>`, e.g. `20250115T233000Z-base-w1000`.
It is a pure function of what determines the outputs, so rerunning a range (after a crash,
or as a backfill of days a daily run already did) lands on the same run ids, and resume
skips what already succeeded. `--force` adds `-f<timestamp>`: a new, separate run, leaving
the old one intact (outputs are immutable once a success manifest names them).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from steps.runtime import asof, layout
from steps.runtime.errors import ManifestError, PipelineError
from steps.runtime.manifest import Manifest, read_manifest
from steps.runtime.partition import Partition, PartitionKey, check_token, parse_as_of
from steps.runtime.store import Store
from steps.runtime.timefmt import to_key_ts
from workflows.config import PipelineConfig
from workflows.graph import Graph

AsOfMode = Literal["pretip", "lock", "custom"]
Action = Literal["run", "skip"]


class PlanError(PipelineError):
    """The requested range or options cannot be planned."""


@dataclass(frozen=True)
class StepPlan:
    asset: str
    action: Action
    reason: str


@dataclass
class PlannedPartition:
    partition: Partition
    first_tip: datetime
    steps: dict[str, StepPlan]
    note: str = ""

    @property
    def to_run(self) -> list[str]:
        return [a for a, s in self.steps.items() if s.action == "run"]


@dataclass
class Plan:
    graph: Graph
    partitions: list[PlannedPartition]
    no_slate: list[date] = field(default_factory=list)

    @property
    def steps_to_run(self) -> int:
        return sum(len(p.to_run) for p in self.partitions)


def run_id_for(as_of: datetime, profile: str, worlds: int, force_tag: str | None = None) -> str:
    run_id = f"{to_key_ts(as_of)}-{profile}-w{worlds}"
    if force_tag:
        run_id += f"-f{force_tag}"
    return check_token(run_id, "run_id")


def date_range(start: date, end: date) -> list[date]:
    if end < start:
        raise PlanError(f"--end {end} is before --start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


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
        frame = store.get_parquet(choice.key)
        if frame.empty:
            return day, None
        return day, frame["tip_ts"].min().to_pydatetime()

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


def read_manifests(
    store: Store, pairs: list[tuple[str, PartitionKey]]
) -> dict[tuple[str, PartitionKey], Manifest | None]:
    """Exactly one GET per manifest, in parallel; no listing needed."""

    def one(pair: tuple[str, PartitionKey]) -> Manifest | None:
        try:
            return read_manifest(store, *pair)
        except ManifestError:
            return None  # unreadable counts as absent: the step reruns and rewrites it

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(zip(pairs, pool.map(one, pairs), strict=True))


def decide(manifest: Manifest | None, *, resume: bool) -> StepPlan:
    asset = manifest.asset if manifest else ""
    if manifest is None:
        return StepPlan(asset, "run", "no manifest yet")
    if manifest.status == "success":
        if resume:
            return StepPlan(asset, "skip", "success manifest exists")
        return StepPlan(asset, "run", "--no-resume: recompute (same run id)")
    if manifest.status == "failed":
        err = manifest.error.type if manifest.error else "error"
        return StepPlan(asset, "run", f"previous attempt failed ({err})")
    return StepPlan(asset, "run", "previously skipped (not due then)")


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
) -> Plan:
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
    partitions: list[PlannedPartition] = []
    for day in days:
        if day not in tips:
            continue
        as_of = as_of_for(as_of_mode, tips[day], config, as_of_ts)
        partition = Partition.build(
            game_date=day,
            run_as_of_ts=as_of,
            run_id=run_id_for(as_of, profile, worlds, force_tag),
            season=season if season is not None else (day.year if day.month >= 8 else day.year - 1),
            profile=profile,
            worlds=worlds,
        )
        partitions.append(PlannedPartition(partition=partition, first_tip=tips[day], steps={}))
    pairs = [(a, p.partition.key) for p in partitions for a in graph.order]
    manifests = read_manifests(store, pairs)
    for planned in partitions:
        for asset in graph.order:
            found = decide(manifests[(asset, planned.partition.key)], resume=resume)
            planned.steps[asset] = StepPlan(asset, found.action, found.reason)
    return Plan(graph=graph, partitions=partitions, no_slate=[d for d in days if d not in tips])


def source_selections(store: Store, graph: Graph, planned: PlannedPartition) -> dict[str, str]:
    """For a dry run: the snapshot each as-of source input would select, or the gap."""
    out: dict[str, str] = {}
    sources = sorted({s for a in graph.order for s in graph.specs[a].sources if s != "boxscores"})
    for source in sources:
        choice = asof.select_as_of(store, source, planned.partition.game_date, planned.partition.run_as_of_ts)
        out[source] = (
            choice.reason
            if isinstance(choice, asof.Gap)
            else layout.landing_snapshot_prefix(source, choice.game_date, choice.snapshot_ts)
        )
    return out
