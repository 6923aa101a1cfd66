"""What became of each step partition in a range: its `TaskResult`, read from its manifest or
decided by the scheduler, for the local runner and an Argo range's summary alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from steps.runtime.manifest import STOPPED_SHORT, Manifest, Status, record_of
from steps.runtime.partition import PartitionKey
from workflows.dag.model import node_label

# A manifest's status (the step ran now, or held back after an upstream not_due), or: reused
# (a success manifest existed), blocked (an upstream failed or was blocked). docs/decisions.md D21.
TaskStatus = Literal[Status, "reused", "blocked"]


@dataclass
class TaskResult:
    game_date: date
    run_id: str | None
    asset: str
    status: TaskStatus
    attempts: int = 0
    duration_s: float = 0.0  # the step's own time, from its manifest
    wall_s: float = 0.0  # what it cost the runner, launch to manifest read
    error_type: str | None = None
    error: str | None = None
    manifest_key: str | None = None
    log_keys: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    reason: str = ""
    key: PartitionKey | None = None  # the step partition (default: game_date/run)
    slate: date | None = None  # the slate it belongs to; None for a shared partition

    @property
    def partition_key(self) -> PartitionKey:
        return self.key or PartitionKey(game_date=self.game_date, run_id=self.run_id)

    @property
    def label(self) -> str:
        return node_label(self.asset, self.partition_key)

    def take_manifest(self, manifest: Manifest, *, reused: bool = False) -> None:
        """What a step partition's manifest says happened: the one reading of a manifest as a
        task result, for the local runner and for an Argo range's summary alike. `reused`: the
        manifest was there before this range ran the step."""
        self.manifest_key = record_of(manifest)[0]
        self.duration_s = 0.0 if reused else manifest.timing.duration_s
        self.gaps = [g.detail for g in manifest.gaps]
        self.metrics = dict(manifest.metrics)
        error = manifest.error
        self.error_type, self.error = (error.type, error.message) if error is not None else (None, None)
        if manifest.status in STOPPED_SHORT:
            self.status = manifest.status
            self.reason = next((c.detail for c in manifest.checks if c.name == manifest.status), "")
        elif manifest.status == "failed":
            self.status = "failed"
        else:
            self.status = "reused" if reused else "success"
            self.reason = "success manifest exists (found at run time)" if reused else ""


def held_back(
    upstream: Mapping[str, str], gate: Mapping[str, str] | None = None
) -> tuple[TaskStatus, str] | None:
    """Why a step partition does not run, from the statuses of the partitions it must read
    (by name, in order) and of those that must not fail (`gate`): blocked by a failure, or
    held back with the word its upstream stopped short with (not_due after not_due). None when
    it may run. The compiled Argo DAG decides the same, where `depends` is judged before
    `when` (workflows/argo/partition_dag.py `dag_task`; tests/integration/test_argo_rules.py)."""
    for name, status in [*upstream.items(), *(gate or {}).items()]:
        if status in ("failed", "blocked"):
            return "blocked", f"upstream {name} {status}"
    for name, status in upstream.items():
        held = next((s for s in STOPPED_SHORT if s == status), None)
        if held is not None:
            return held, f"upstream {name} {held}"
    return None
