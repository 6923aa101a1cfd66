"""The plan of a range, recorded in the store so whoever summarises it sees the same plan."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from steps.runtime import layout
from steps.runtime.partition import Partition
from steps.runtime.store import Store
from workflows.argo import partition_item
from workflows.plan import Plan, PlannedPartition, StepPlan


class PlanRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backfill_id: str
    kind: str
    created_at: datetime
    options: dict[str, object]
    steps: list[str]
    partitions: list[Partition]
    no_slate: list[date]

    def argo_items(self) -> list[dict[str, str]]:
        """Partitions as the Argo range/chunk templates take them (all values strings)."""
        return [partition_item(p) for p in self.partitions]


def plan_key(backfill_id: str) -> str:
    return f"{layout.backfill_prefix(backfill_id)}plan.json"


def record_plan(
    store: Store, plan: Plan, *, backfill_id: str, kind: str, options: dict[str, object], created_at: datetime
) -> PlanRecord:
    record = PlanRecord(
        backfill_id=backfill_id,
        kind=kind,
        created_at=created_at,
        options=options,
        steps=list(plan.graph.order),
        partitions=[p.partition for p in plan.partitions if p.to_run],
        no_slate=plan.no_slate,
    )
    store.put_json(plan_key(backfill_id), record.model_dump(mode="json"))
    return record


def read_plan(store: Store, backfill_id: str) -> PlanRecord:
    return PlanRecord.model_validate(store.get_json(plan_key(backfill_id)))


def as_plan(record: PlanRecord) -> list[PlannedPartition]:
    return [
        PlannedPartition(
            partition=p,
            first_tip=p.run_as_of_ts,
            steps={a: StepPlan(a, "run", "planned") for a in record.steps},
        )
        for p in record.partitions
    ]
