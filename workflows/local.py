"""The local runner: the same DAG and the same step command lines, on one machine.

One scheduler thread decides; a bounded pool executes. A task is dispatched when its
upstream steps in the same partition succeeded, a run slot is free (`--max-parallel`) and
every concurrency group it names has a permit (the limits the Argo semaphores also use).
A failed partition never stops the others.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal, TypeVar

from steps.runtime import layout
from steps.runtime.command import step_argv
from steps.runtime.errors import EXIT_NOT_RETRYABLE, ManifestError, StoreError
from steps.runtime.manifest import Manifest, read_manifest
from steps.runtime.partition import Partition
from steps.runtime.store import Store
from workflows.config import PipelineConfig
from workflows.graph import Graph
from workflows.plan import Plan, PlannedPartition
from workflows.warm import WarmWorker, run_subprocess

TaskStatus = Literal["success", "failed", "skipped", "reused", "blocked"]
Mode = Literal["warm", "subprocess"]
T = TypeVar("T")


@dataclass
class TaskResult:
    game_date: date
    run_id: str
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


def with_store_retries(fn: Callable[[], T], *, attempts: int = 6, delay: float = 1.0) -> T:
    """The runner's own store calls ride out a store restart (steps retry on their own)."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except StoreError:
            if attempt == attempts:
                raise
            time.sleep(delay * attempt)
    raise AssertionError("unreachable")


def command_for(asset: str, partition: Partition, store_url: str, correlation_id: str) -> list[str]:
    return step_argv(
        asset,
        game_date=partition.game_date.isoformat(),
        run_id=partition.run_id,
        as_of=partition.as_of_iso(),
        store=store_url,
        correlation_id=correlation_id,
        season=str(partition.season) if partition.season is not None else None,
        profile=partition.profile,
        worlds=str(partition.worlds) if partition.worlds is not None else None,
        orchestrator_run_id=correlation_id,
    )


class LocalRunner:
    def __init__(
        self,
        store: Store,
        graph: Graph,
        config: PipelineConfig,
        *,
        correlation_id: str,
        max_parallel: int | None = None,
        mode: Mode = "warm",
        on_task: Callable[[TaskResult], None] | None = None,
        on_start: Callable[[str, PlannedPartition], None] | None = None,
    ) -> None:
        self.store = store
        self.graph = graph
        self.config = config
        self.correlation_id = correlation_id
        self.max_parallel = max_parallel or config.runner.max_parallel
        self.mode = mode
        self.on_task = on_task or (lambda result: None)
        self.on_start = on_start or (lambda asset, planned: None)
        self._warm: WarmWorker | None = None
        self._logs = tempfile.TemporaryDirectory(prefix="pipeline-logs-")

    # ---- one task ---------------------------------------------------------------------
    def _launch(self, argv: list[str], log_base: Path) -> int:
        env = dict(os.environ)
        stdout, stderr = log_base.with_suffix(".out"), log_base.with_suffix(".err")
        if self._warm is not None:
            return self._warm.run(argv, stdout=stdout, stderr=stderr, env=env)
        return run_subprocess(argv, stdout=stdout, stderr=stderr, env=env)

    def _keep_logs(self, asset: str, partition: Partition, attempt: int, log_base: Path) -> list[str]:
        keys = []
        for suffix, stream in ((".out", "stdout"), (".err", "stderr")):
            path = log_base.with_suffix(suffix)
            if path.exists():
                key = layout.log_key(asset, partition.key, attempt, stream)
                data = path.read_bytes()
                with_store_retries(lambda key=key, data=data: self.store.put_bytes(key, data))
                keys.append(key)
        return keys

    def run_task(self, asset: str, planned: PlannedPartition) -> TaskResult:
        partition = planned.partition
        spec = self.graph.specs[asset]
        limit = spec.retries if spec.retries is not None else self.config.runner.retries.limit
        result = TaskResult(partition.game_date, partition.run_id, asset, "failed", started_at=time.time())
        began = time.perf_counter()
        manifest: Manifest | None = None
        for attempt in range(1, limit + 2):
            if attempt > 1:
                time.sleep(self.config.runner.retries.delay(attempt))
            argv = [
                *command_for(asset, partition, self.store.url, self.correlation_id),
                "--attempt",
                str(attempt),
            ]
            log_base = Path(self._logs.name) / f"{asset}-{partition.game_date}-{partition.run_id}-{attempt}"
            rc = self._launch(argv, log_base)
            result.attempts = attempt
            result.log_keys += self._keep_logs(asset, partition, attempt, log_base)
            try:
                manifest = with_store_retries(lambda: read_manifest(self.store, asset, partition.key))
            except ManifestError as exc:
                manifest, result.error_type, result.error = None, "ManifestError", str(exc)
            if rc == 0 and manifest is not None and manifest.status in ("success", "skipped"):
                break
            if manifest is not None and manifest.error is not None:
                result.error_type, result.error = manifest.error.type, manifest.error.message
            elif rc != 0 and not result.error:
                tail = (
                    log_base.with_suffix(".err").read_text(errors="replace")[-500:]
                    if log_base.with_suffix(".err").exists()
                    else ""
                )
                result.error_type = "Crashed" if rc < 0 else "ExitCode"
                result.error = f"step exited {rc} without a manifest; stderr tail: {tail.strip()}"
            if rc == EXIT_NOT_RETRYABLE:
                break  # the same arguments fail the same way
        result.wall_s = time.perf_counter() - began
        if manifest is not None:
            result.manifest_key = layout.manifest_key(asset, partition.key)
            result.duration_s = manifest.timing.duration_s
            result.gaps = [g.detail for g in manifest.gaps]
            result.metrics = dict(manifest.metrics)
            if manifest.status in ("success", "skipped") and rc == 0:
                result.status = manifest.status
                result.error_type = result.error = None
                if manifest.status == "skipped":
                    result.reason = next(
                        (c.detail for c in manifest.checks if c.name == "not_due"), "not due"
                    )
        return result

    # ---- the schedule -----------------------------------------------------------------
    def run(self, plan: Plan) -> list[TaskResult]:
        results: dict[tuple[int, str], TaskResult] = {}
        pending: list[tuple[int, str]] = []
        for index, planned in enumerate(plan.partitions):
            for asset in self.graph.order:
                step = planned.steps[asset]
                if step.action == "skip":
                    reused = TaskResult(
                        planned.partition.game_date,
                        planned.partition.run_id,
                        asset,
                        "reused",
                        reason=step.reason,
                    )
                    reused.manifest_key = layout.manifest_key(asset, planned.partition.key)
                    results[(index, asset)] = reused
                else:
                    pending.append((index, asset))
        permits = dict(self.config.limits)
        running: dict[Future[TaskResult], tuple[int, str]] = {}
        if pending and self.mode == "warm":
            self._warm = WarmWorker()
        try:
            with ThreadPoolExecutor(max_workers=self.max_parallel) as pool:
                while pending or running:
                    progressed = True
                    while progressed:
                        progressed = False
                        for task in list(pending):
                            index, asset = task
                            state = self._readiness(task, results)
                            if state == "wait":
                                continue
                            if state != "ready":
                                pending.remove(task)
                                planned = plan.partitions[index]
                                blocked = TaskResult(
                                    planned.partition.game_date,
                                    planned.partition.run_id,
                                    asset,
                                    state,
                                    reason=self._why(task, results),
                                )
                                results[task] = blocked
                                self.on_task(blocked)
                                progressed = True
                                continue
                            groups = self.graph.specs[asset].concurrency
                            if len(running) >= self.max_parallel or any(
                                permits.get(g, 1) <= 0 for g in groups
                            ):
                                continue
                            for g in groups:
                                permits[g] = permits.get(g, 1) - 1
                            pending.remove(task)
                            self.on_start(asset, plan.partitions[index])
                            running[pool.submit(self.run_task, asset, plan.partitions[index])] = task
                            progressed = True
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        task = running.pop(future)
                        for g in self.graph.specs[task[1]].concurrency:
                            permits[g] = permits.get(g, 1) + 1
                        results[task] = future.result()
                        self.on_task(results[task])
        finally:
            if self._warm is not None:
                self._warm.close()
                self._warm = None
        order = {a: i for i, a in enumerate(self.graph.order)}
        return [results[k] for k in sorted(results, key=lambda k: (k[0], order[k[1]]))]

    def _readiness(self, task: tuple[int, str], results: dict[tuple[int, str], TaskResult]) -> str:
        index, asset = task
        states = [results.get((index, up)) for up in self.graph.deps[asset]]
        if any(s is None for s in states):
            return "wait"
        held = held_back(self.graph, asset, {s.asset: s.status for s in states if s is not None})
        return held[0] if held else "ready"

    def _why(self, task: tuple[int, str], results: dict[tuple[int, str], TaskResult]) -> str:
        index, asset = task
        statuses = {up: r.status for up in self.graph.deps[asset] if (r := results.get((index, up)))}
        held = held_back(self.graph, asset, statuses)
        return held[1] if held else ""


def held_back(graph: Graph, asset: str, upstream: dict[str, str]) -> tuple[TaskStatus, str] | None:
    """Why `asset` does not run, from its upstream steps' statuses in the same partition: blocked
    by a failure, or skipped after a skip. None when it may run. The compiled Argo DAG decides
    the same (workflows/argo.py `partition_dag`; tests/integration/test_argo_rules.py)."""
    for up in graph.deps[asset]:
        if upstream.get(up) in ("failed", "blocked"):
            return "blocked", f"upstream {up} {upstream[up]}"
    for up in graph.deps[asset]:
        if upstream.get(up) == "skipped":
            return "skipped", f"upstream {up} skipped"
    return None
