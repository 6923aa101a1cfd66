"""Catch-up: a daily run that looks back and heals the days that have no good run.

Nothing special executes: the range simply starts N days earlier and resume skips what
already succeeded. This module says, per day, why it is run again, and re-runs `promote`
where a day finished but its pointer is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from steps.runtime import layout
from steps.runtime.pointer import current_run
from steps.runtime.store import Store
from workflows.plan import Plan, StepPlan

FINAL_ASSET = "promote"
PUBLISHED_ASSET = "finalize.unified"


def catch_up_annotator(today: date, store: Store) -> Callable[[Plan], list[dict[str, str]]]:
    def annotate(plan: Plan) -> list[dict[str, str]]:
        healed = []
        for planned in plan.partitions:
            day = planned.partition.game_date
            if day >= today:
                continue
            final = planned.steps.get(FINAL_ASSET)
            pointer = current_run(store, layout.pointer_scope(PUBLISHED_ASSET, day))
            if final is not None and final.action == "skip" and pointer is None:
                planned.steps[FINAL_ASSET] = StepPlan(FINAL_ASSET, "run", "pointer missing")
                reason = "pointer missing"
            elif not planned.to_run:
                continue
            elif failed := [
                s for s in planned.steps.values() if s.reason.startswith("previous attempt failed")
            ]:
                reason = f"failed manifest: {failed[0].asset} {failed[0].reason}"
            elif final is None or final.action == "skip":
                reason = "post-slate steps now due"
            elif final.reason == "no manifest yet":
                reason = "no success manifest"
            else:
                reason = final.reason
            planned.note = f"catch-up: {reason}"
            healed.append({"game_date": day.isoformat(), "reason": reason, "steps": ",".join(planned.to_run)})
        return healed

    return annotate
