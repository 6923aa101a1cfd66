"""The per-backfill summary: `backfills/<id>/summary.json` and `summary.csv`."""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from steps.runtime import layout
from steps.runtime.store import Store
from workflows.dag.model import Plan
from workflows.dag.outcome import TaskResult

_VOLATILE = [
    (re.compile(r"\d{4}-\d{2}-\d{2}(T[\d:.]+Z?)?"), "<date>"),
    (re.compile(r"\b\d{8}T\d{6}Z[\w.-]*"), "<run>"),
    (re.compile(r"'[^']*'"), "'…'"),
    (re.compile(r"\b[0-9a-f]{12,}\b"), "<hex>"),
    (re.compile(r"\d+(\.\d+)?"), "<n>"),
]


def error_signature(asset: str, error_type: str | None, message: str | None) -> str:
    """What a failure is, with dates, ids and numbers taken out, so alike failures group."""
    text = (message or "").splitlines()[0] if message else ""
    for pattern, token in _VOLATILE:
        text = pattern.sub(token, text)
    return f"{asset}: {error_type or 'Error'}: {text[:160]}"


class PartitionOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    game_date: str
    run_id: str
    run_as_of_ts: str
    status: str  # success | failed | reused
    failed_steps: list[str] = Field(default_factory=list)
    blocked_steps: list[str] = Field(default_factory=list)
    not_due_steps: list[str] = Field(default_factory=list)
    not_promoted_steps: list[str] = Field(default_factory=list)
    note: str = ""


class StepStats(BaseModel):
    ran: int = 0
    reused: int = 0
    failed: int = 0
    blocked: int = 0
    not_due: int = 0  # ran and stopped short, or held back after an upstream not_due
    not_promoted: int = 0
    attempts: int = 0
    total_s: float = 0.0
    mean_s: float = 0.0
    max_s: float = 0.0


class ErrorGroup(BaseModel):
    signature: str
    count: int
    dates: list[str]
    example_message: str
    example_manifest: str | None = None
    example_log: str | None = None


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary_version: str = "v1"
    backfill_id: str
    correlation_id: str
    kind: str  # backfill | daily | catch-up
    store: str
    range: dict[str, str]
    options: dict[str, Any]
    started_at: datetime
    finished_at: datetime
    wall_s: float
    partitions: dict[str, int]
    partition_outcomes: list[PartitionOutcome]
    no_slate_dates: list[str]
    steps: dict[str, StepStats]
    top_errors: list[ErrorGroup]
    gaps: list[dict[str, str]]
    accuracy: dict[str, float] = Field(default_factory=dict)
    caught_up: list[dict[str, str]] = Field(default_factory=list)
    # Partitions read by slates but not one of them (a month's schedule, window slates).
    shared_failures: list[str] = Field(default_factory=list)
    runner: dict[str, float | str]

    @property
    def failed(self) -> bool:
        return self.partitions.get("failed", 0) > 0 or bool(self.shared_failures)

    def failure_message(self, limit: int = 12) -> str:
        """One line naming the failed partitions and, for each, its failed steps and why."""
        why: dict[tuple[str, str], str] = {}
        for group in self.top_errors:
            asset, _, cause = group.signature.partition(": ")
            for where in group.dates:
                why.setdefault((where, asset), cause)
        failed = [o for o in self.partition_outcomes if o.status == "failed"]

        def step(day: str, label: str) -> str:
            asset, _, group = label.partition(" / ")
            return f"{label} ({why.get((f'{day} / {group}' if group else day, asset), 'failed')})"

        parts = [
            f"{o.game_date}: " + (", ".join(step(o.game_date, s) for s in o.failed_steps) or "blocked")
            for o in failed[:limit]
        ]
        parts += [f"shared {s}" for s in self.shared_failures[:limit]]
        more = f"; and {len(failed) - limit} more" if len(failed) > limit else ""
        return (
            f"{len(failed)} of {self.partitions.get('planned', 0)} partition(s) failed "
            f"(backfill {self.backfill_id}): {'; '.join(parts)}{more}"
        )


def _in_slate(result: TaskResult) -> str:
    """A step partition named within its slate: `minutes.score`, `finalize.unified / draft group G`."""
    group = result.partition_key.draft_group_id
    return f"{result.asset} / draft group {group}" if group else result.asset


def _accuracy(results: list[TaskResult]) -> dict[str, float]:
    rows = [
        r.metrics for r in results if r.asset == "accuracy" and r.status == "success" and r.metrics.get("n")
    ]
    if not rows:
        return {}
    n = sum(r["n"] for r in rows)
    out = {"dates": float(len(rows)), "players": n}
    for name in ("mae_fp", "baseline_mae_fp", "mae_minutes", "baseline_mae_minutes"):
        out[name] = round(sum(r[name] * r["n"] for r in rows) / n, 6)
    out["rmse_fp"] = round((sum(r["rmse_fp"] ** 2 * r["n"] for r in rows) / n) ** 0.5, 6)
    return out


def _partition_outcomes(plan: Plan, by_slate: dict[date | None, list[TaskResult]]) -> list[PartitionOutcome]:
    outcomes = []
    for planned in plan.partitions:
        p = planned.partition
        rs = by_slate[p.game_date]
        failed = [_in_slate(r) for r in rs if r.status == "failed"]
        blocked = [_in_slate(r) for r in rs if r.status == "blocked"]
        if failed or blocked:
            status = "failed"
        elif all(r.status == "reused" for r in rs):
            status = "reused"
        else:
            status = "success"
        outcomes.append(
            PartitionOutcome(
                game_date=p.game_date.isoformat(),
                run_id=p.run_id or "",
                run_as_of_ts=p.as_of_iso(),
                status=status,
                failed_steps=failed,
                blocked_steps=blocked,
                not_due_steps=[_in_slate(r) for r in rs if r.status == "not_due"],
                not_promoted_steps=[_in_slate(r) for r in rs if r.status == "not_promoted"],
                note=planned.note,
            )
        )
    return outcomes


def _step_stats(results: list[TaskResult]) -> dict[str, StepStats]:
    steps: dict[str, StepStats] = {}
    durations: dict[str, list[float]] = defaultdict(list)
    for r in results:
        stats = steps.setdefault(r.asset, StepStats())
        if r.status == "reused":
            stats.reused += 1
            continue
        if r.status == "blocked":
            stats.blocked += 1
            continue
        stats.attempts += r.attempts
        if r.status == "failed":
            stats.failed += 1
        elif r.status == "not_due":
            stats.not_due += 1
        elif r.status == "not_promoted":
            stats.not_promoted += 1
        if r.attempts:
            stats.ran += 1
            durations[r.asset].append(r.duration_s)
    for asset, values in durations.items():
        steps[asset].total_s = round(sum(values), 4)
        steps[asset].mean_s = round(statistics.fmean(values), 4)
        steps[asset].max_s = round(max(values), 4)
    return steps


def _top_errors(results: list[TaskResult]) -> list[ErrorGroup]:
    groups: dict[str, list[TaskResult]] = defaultdict(list)
    for r in results:
        if r.status == "failed":
            groups[error_signature(r.asset, r.error_type, r.error)].append(r)
    return [
        ErrorGroup(
            signature=sig,
            count=len(rs),
            dates=sorted({r.partition_key.describe() for r in rs}),
            example_message=rs[0].error or "",
            example_manifest=rs[0].manifest_key,
            example_log=layout.newest_log(rs[0].log_keys),
        )
        for sig, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]


def _runner_figures(results: list[TaskResult], mode: str) -> dict[str, float | str]:
    """What orchestration cost beside the steps' own work (wall per task minus step time)."""
    ran = [r for r in results if r.attempts]
    step_time = sum(r.duration_s for r in ran)
    wall_time = sum(r.wall_s for r in ran)
    return {
        "mode": mode,
        "steps_run": float(len(ran)),
        "step_seconds": round(step_time, 4),
        "task_wall_seconds": round(wall_time, 4),
        "overhead_per_step_s": round((wall_time - step_time) / len(ran), 4) if ran else 0.0,
    }


def build_summary(
    *,
    backfill_id: str,
    kind: str,
    plan: Plan,
    results: list[TaskResult],
    store: Store,
    options: dict[str, Any],
    started_at: datetime,
    finished_at: datetime,
    mode: str,
    caught_up: list[dict[str, str]] | None = None,
) -> Summary:
    by_slate: dict[date | None, list[TaskResult]] = defaultdict(list)
    for r in results:
        by_slate[r.slate].append(r)
    outcomes = _partition_outcomes(plan, by_slate)
    shared_failed = [r.label for r in by_slate[None] if r.status in ("failed", "blocked")]
    counts = Counter(o.status for o in outcomes)
    return Summary(
        backfill_id=backfill_id,
        correlation_id=backfill_id,
        kind=kind,
        store=store.url,
        range={"start": options.get("start", ""), "end": options.get("end", "")},
        options=options,
        started_at=started_at,
        finished_at=finished_at,
        wall_s=round((finished_at - started_at).total_seconds(), 3),
        partitions={
            "planned": len(plan.partitions),
            "attempted": sum(1 for o in outcomes if o.status != "reused"),
            "succeeded": counts.get("success", 0),
            "failed": counts.get("failed", 0),
            "reused": counts.get("reused", 0),  # every step done before: nothing recomputed
            "no_slate": len(plan.no_slate),
            "shared": len(by_slate[None]),
            "shared_failed": len(shared_failed),
        },
        shared_failures=shared_failed,
        partition_outcomes=outcomes,
        no_slate_dates=[d.isoformat() for d in plan.no_slate],
        steps=_step_stats(results),
        top_errors=_top_errors(results),
        gaps=[
            {"game_date": r.game_date.isoformat(), "asset": r.asset, "detail": g}
            for r in results
            for g in r.gaps
        ],
        accuracy=_accuracy(results),
        caught_up=caught_up or [],
        runner=_runner_figures(results, mode),
    )


def summary_csv(results: list[TaskResult]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "game_date",
            "partition",
            "asset",
            "status",
            "attempts",
            "duration_s",
            "error_type",
            "error_signature",
            "reason",
        ]
    )
    for r in results:
        signature = error_signature(r.asset, r.error_type, r.error) if r.status == "failed" else ""
        writer.writerow(
            [
                r.game_date.isoformat(),
                r.partition_key.segments(),
                r.asset,
                r.status,
                r.attempts,
                f"{r.duration_s:.4f}",
                r.error_type or "",
                signature,
                r.reason,
            ]
        )
    return buf.getvalue()


def write_summary(store: Store, summary: Summary, results: list[TaskResult]) -> tuple[str, str]:
    json_key = layout.backfill_key(summary.backfill_id, layout.SUMMARY_FILE)
    csv_key = layout.backfill_key(summary.backfill_id, "summary.csv")
    store.put_json(json_key, summary.model_dump(mode="json"))
    store.put_bytes(csv_key, summary_csv(results).encode())
    return json_key, csv_key
