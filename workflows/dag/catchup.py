"""Catch-up: a daily run that looks back and heals the days that have no good run.

Nothing special executes: the range simply starts N days earlier and resume reuses what
already succeeded. This module says, per day, why it is run again, and re-runs `promote`
where a day finished but its pointer is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from steps.pipeline.finalize import PUBLISHED_ASSET
from steps.runtime import layout
from steps.runtime.pointer import current_run
from steps.runtime.store import Store
from workflows.dag.model import Plan, PlannedStep, StepPlan

FINAL_ASSET = "promote"


def _within_slate(node: PlannedStep) -> str:
    group = node.partition.draft_group_id
    return f"{node.asset} / draft group {group}" if group else node.asset


def catch_up_annotator(today: date, store: Store) -> Callable[[Plan], list[dict[str, str]]]:
    def annotate(plan: Plan) -> list[dict[str, str]]:
        healed = []
        for planned in plan.partitions:
            day = planned.partition.game_date
            if day >= today:
                continue
            nodes = plan.slate_nodes(day)
            promotes = [n for n in nodes if n.asset == FINAL_ASSET]
            lost = [
                n
                for n in promotes
                if n.action == "reuse"
                and current_run(store, layout.pointer_scope(PUBLISHED_ASSET, n.partition.key)) is None
            ]
            for node in lost:
                node.action, node.reason = "run", "pointer missing"
            to_run = [n for n in nodes if n.action == "run"]
            if lost:
                reason = "pointer missing"
            elif not to_run:
                continue
            elif failed := [n for n in to_run if n.reason.startswith("previous attempt failed")]:
                reason = f"failed manifest: {_within_slate(failed[0])} {failed[0].reason}"
            elif promotes and all(n.action == "reuse" for n in promotes):
                reason = "post-slate steps now due"
            elif not promotes or promotes[0].reason == "no manifest yet":
                reason = "no success manifest"
            else:
                reason = promotes[0].reason
            planned.note = f"catch-up: {reason}"
            planned.steps = {
                n.asset: StepPlan(n.asset, n.action, n.reason)
                for n in nodes
                if not n.partition.draft_group_id
            }
            healed.append(
                {
                    "game_date": day.isoformat(),
                    "reason": reason,
                    "steps": ",".join(sorted({n.asset for n in to_run})),
                }
            )
        return healed

    return annotate
