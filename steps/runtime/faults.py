"""Fault injection for chaos and failure tests, off unless PIPELINE_FAULTS is set.

`PIPELINE_FAULTS="minutes.score@2025-01-16=raise;sim.run@*=sleep:30"` makes matching steps
fail or stall at the point where outputs are written but no manifest yet: the moment a crash
must not publish anything.
"""

from __future__ import annotations

import os
import time
from datetime import date


class InjectedFault(RuntimeError):
    """Raised by an injected `raise` fault."""


def _rules() -> list[tuple[str, str, str]]:
    spec = os.environ.get("PIPELINE_FAULTS", "")
    rules = []
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        target, _, action = item.partition("=")
        asset, _, when = target.partition("@")
        rules.append((asset, when or "*", action))
    return rules


def skip_work(asset: str, game_date: date) -> bool:
    """`<asset>@<date>=noop`: run the step's machinery (manifest, events) but not its work;
    used to measure orchestration overhead alone."""
    return any(
        action == "noop" and rule_asset in (asset, "*") and when in (game_date.isoformat(), "*")
        for rule_asset, when, action in _rules()
    )


def maybe_fault(asset: str, game_date: date) -> None:
    for rule_asset, when, action in _rules():
        if rule_asset not in (asset, "*") or when not in (game_date.isoformat(), "*"):
            continue
        if action == "raise":
            raise InjectedFault(f"injected fault in {asset} for {game_date}")
        if action.startswith("sleep:"):
            time.sleep(float(action.removeprefix("sleep:")))
        if action == "kill":
            os.kill(os.getpid(), 9)
