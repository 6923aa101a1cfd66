"""What a plan is: the partitions of a range, each step's node in them, and what each node will do."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from steps.runtime import layout
from steps.runtime.errors import PipelineError
from steps.runtime.partition import Partition, PartitionKey, month_of
from steps.runtime.shapes import SHAPES
from workflows.dag.graph import Graph

AsOfMode = Literal["pretip", "lock", "custom"]


Action = Literal["run", "reuse"]  # reuse: its success manifest stands (docs/decisions.md D21)


NodeId = tuple[str, PartitionKey]


class PlanError(PipelineError):
    """The requested range or options cannot be planned."""


@dataclass(frozen=True)
class RangeRequest:
    """How a range was asked for: its dates, as-of, simulation and rerun choices. Its summary
    and `range_started` event record it (`record`)."""

    start: date
    end: date
    as_of_mode: AsOfMode = "pretip"
    as_of_ts: datetime | None = None
    worlds: int | None = None
    profile: str | None = None
    season: int | None = None
    resume: bool = True
    force: bool = False
    draft_groups: list[str] | None = None
    reason: str | None = None
    no_downstream: bool = False
    max_parallel: int | None = None

    def record(self, steps: list[str] | None, default_parallel: int) -> dict[str, object]:
        """The request as JSON; `steps` is the chosen steps when not the whole DAG."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "as_of_mode": self.as_of_mode,
            "as_of_ts": self.as_of_ts.isoformat() if self.as_of_ts else None,
            "worlds": self.worlds,
            "profile": self.profile,
            "resume": self.resume,
            "force": self.force,
            "steps": steps,
            "no_downstream": self.no_downstream,
            "draft_groups": self.draft_groups,
            "reason": self.reason,
            "max_parallel": self.max_parallel or default_parallel,
        }


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

    # Named once: a season's plan asks each node for its id and its records' folder many
    # times, and a partition's key is a new model each time it is asked. A node's partition
    # is never replaced.
    @functools.cached_property
    def id(self) -> NodeId:
        return (self.asset, self.partition.key)

    @functools.cached_property
    def run_prefix(self) -> str:
        """Where its run's records are filed (D22)."""
        return layout.manifest_run_prefix(self.asset, self.id[1])

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


@functools.lru_cache(maxsize=4096)
def settled_key(day: date) -> PartitionKey:
    """A settled date's key, made once: a season's windows name each settled date once per
    slate after it (tens of thousands of times in a season's plan)."""
    return PartitionKey(game_date=day)


def link(
    plan: Plan, node: PlannedStep, months: dict[str, Partition], windows: dict[date, list[date]]
) -> None:
    """What `node` reads among the plan's nodes: `needs` (must succeed) and `after` (a window:
    must finish, whatever its outcome, so the window is the same however the run is ordered)."""
    from steps.runtime.inputs import mapped_key

    graph = plan.graph
    p = node.partition
    consumer = SHAPES[p.shape]
    for item in graph.specs[node.asset].inputs:
        if item.asset not in graph.specs:
            continue  # read from an earlier run
        producer = graph.specs[item.asset].shape
        if item.mapping == "month":
            node.needs.append((item.asset, months[month_of(p.game_date)].key))
        elif item.mapping == "window":
            node.after += [(item.asset, settled_key(x)) for x in windows.get(p.game_date, [])]
        elif item.mapping == "draft_groups":
            node.fan_in = PartitionKey(game_date=p.game_date, run_id=p.run_id)
            groups = plan.draft_groups.get(node.fan_in)
            if groups is not None:
                node.needs += [
                    (item.asset, node.fan_in.model_copy(update={"draft_group_id": g})) for g in groups
                ]
        else:
            # A producer of the consumer's own shape keys alike: its key is the node's own.
            key = node.id[1] if producer.keys == consumer.keys else mapped_key(p, producer, item)
            if (item.asset, key) in plan.nodes:
                node.needs.append((item.asset, key))
