"""Catch-up: a daily run that looks back and heals the days that have no good run.

Nothing special executes: the range simply starts N days earlier, and resume skips what
already succeeded. This module only explains, per day, why it is being run again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from workflows.plan import Plan

FINAL_ASSET = "promote"


def catch_up_annotator(today: date) -> Callable[[Plan], list[dict[str, str]]]:
    def annotate(plan: Plan) -> list[dict[str, str]]:
        healed = []
        for planned in plan.partitions:
            day = planned.partition.game_date
            if day >= today or not planned.to_run:
                continue
            final = planned.steps.get(FINAL_ASSET)
            if final is None or final.action == "skip":
                reason = "post-slate steps now due" if planned.to_run else ""
            else:
                reason = final.reason
            planned.note = f"catch-up: {reason}"
            healed.append({"game_date": day.isoformat(), "reason": reason, "steps": ",".join(planned.to_run)})
        return healed

    return annotate
