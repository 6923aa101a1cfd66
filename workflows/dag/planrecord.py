"""The plan of a range, recorded in the store so whoever summarises it sees the same plan."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, field_validator

from steps.runtime import layout
from steps.runtime.partition import Partition, PartitionKey
from steps.runtime.store import Store
from workflows.argo import build as argo
from workflows.dag.draft_groups import expand_draft_groups, groups_from_store
from workflows.dag.graph import Graph
from workflows.dag.model import Action, Plan, PlannedPartition, PlannedStep, StepPlan


class RecordedStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset: str
    partition: Partition
    action: Action
    slate: date | None
    needs: list[tuple[str, str]]  # (asset, partition segments)
    after: list[tuple[str, str]]
    gate: list[tuple[str, str]] = []
    fan_in: str | None = None

    @field_validator("action", mode="before")
    @classmethod
    def _legacy_skip(cls, value: object) -> object:
        """A plan recorded before D21 said `skip` for `reuse`; the exit handler of a range
        submitted then still reads it."""
        return "reuse" if value == "skip" else value


class PlanRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backfill_id: str
    kind: str
    created_at: datetime
    options: dict[str, object]
    steps: list[str]
    partitions: list[Partition]  # the slates with anything to run
    nodes: list[RecordedStep]
    no_slate: list[date]

    def argo_items(self) -> list[dict[str, str]]:
        """Slates as the Argo range/chunk templates take them (all values strings)."""
        return argo.slate_items(self.partitions)

    def shared_items(self, graph: Graph) -> dict[str, list[dict[str, str]]]:
        """The shared stage's partitions to run, by step."""
        shared = set(argo.shared_assets(graph))
        return argo.shared_items(
            [
                (n.asset, n.partition)
                for n in self.nodes
                if n.slate is None and n.asset in shared and n.action == "run"
            ]
        )


def record_plan(
    store: Store, plan: Plan, *, backfill_id: str, kind: str, options: dict[str, object], created_at: datetime
) -> PlanRecord:
    slates = {p.partition.game_date for p in plan.slates_with_work()}
    record = PlanRecord(
        backfill_id=backfill_id,
        kind=kind,
        created_at=created_at,
        options=options,
        steps=list(plan.graph.order),
        partitions=[p.partition for p in plan.partitions if p.partition.game_date in slates],
        nodes=[
            RecordedStep(
                asset=n.asset,
                partition=n.partition,
                action=n.action,
                slate=n.slate,
                needs=[(a, k.segments()) for a, k in n.needs],
                after=[(a, k.segments()) for a, k in n.after],
                gate=[(a, k.segments()) for a, k in n.gate],
                fan_in=n.fan_in.segments() if n.fan_in else None,
            )
            for n in plan.nodes.values()
            if n.slate is None or n.slate in slates
        ],
        no_slate=plan.no_slate,
    )
    store.put_json(layout.plan_key(backfill_id), record.model_dump(mode="json"))
    return record


def read_plan(store: Store, backfill_id: str) -> PlanRecord:
    return PlanRecord.model_validate(store.get_json(layout.plan_key(backfill_id)))


def as_plan(record: PlanRecord, graph: Graph, store: Store) -> Plan:
    """The recorded plan again, with each slate's draft groups as its `dk.salaries` listed them."""
    plan = Plan(
        graph=graph,
        partitions=[
            PlannedPartition(
                partition=p,
                first_tip=p.run_as_of_ts,
                steps={a: StepPlan(a, "run", "planned") for a in record.steps},
            )
            for p in record.partitions
        ],
        no_slate=record.no_slate,
    )
    for n in record.nodes:
        node = PlannedStep(
            n.asset,
            n.partition,
            n.action,
            "planned",
            n.slate,
            needs=[(a, PartitionKey.from_segments(k)) for a, k in n.needs],
            after=[(a, PartitionKey.from_segments(k)) for a, k in n.after],
            gate=[(a, PartitionKey.from_segments(k)) for a, k in n.gate],
            fan_in=PartitionKey.from_segments(n.fan_in) if n.fan_in else None,
        )
        plan.nodes[node.id] = node
    for slate in record.partitions:
        groups = groups_from_store(store, slate.key)
        if groups is not None:
            expand_draft_groups(plan, store, slate.key, groups, resume=True)
    return plan
