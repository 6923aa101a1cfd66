"""The local runner: the same DAG and the same step command lines, on one machine.

One scheduler thread decides; a pool executes. A step partition is dispatched when the
partitions it reads (through its inputs' mappings) succeeded, those of its windows finished,
a run slot is free (`--max-parallel`) and every concurrency group it names has a permit (the
limits the Argo semaphores also use). A slot is a running step process: it is handed on the
moment the process exits, while its thread keeps the logs and reads the manifest. When a
slate's `dk.salaries` succeeds, its draft-group partitions join the plan. A failure holds
back only what reads it.
"""

from __future__ import annotations

import heapq
import os
import queue
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal, TypeVar

from steps.runtime import layout
from steps.runtime.command import step_argv
from steps.runtime.errors import EXIT_NOT_RETRYABLE, ManifestError, StoreError
from steps.runtime.layout import new_attempt_id
from steps.runtime.manifest import STOPPED_SHORT, read_manifest, record_of
from steps.runtime.partition import Partition
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.store import Store
from workflows.dag.config import PipelineConfig
from workflows.dag.draft_groups import expand_draft_groups, groups_from_store
from workflows.dag.graph import Graph
from workflows.dag.model import NodeId, Plan, PlannedStep, node_label
from workflows.dag.outcome import TaskResult, TaskStatus, held_back
from workflows.local.warm import TIMED_OUT, WarmWorker, run_subprocess

Mode = Literal["warm", "subprocess"]
T = TypeVar("T")


@dataclass
class _Schedule:
    """A range's bookkeeping: what finished, what waits for what, and what may start."""

    results: dict[NodeId, TaskResult] = field(default_factory=dict)
    waiting: dict[NodeId, set[NodeId]] = field(default_factory=dict)  # pending: what it waits for
    waiters: dict[NodeId, list[NodeId]] = field(default_factory=dict)  # the reverse
    ready: list[tuple[int, NodeId]] = field(default_factory=list)  # a heap, in plan order
    order: dict[NodeId, int] = field(default_factory=dict)
    admitted: deque[NodeId] = field(default_factory=deque)  # joined, not yet decided on


class _Slots:
    """The run slots (`--max-parallel`): each held by one running step process. A retry takes
    its slot back ahead of the scheduler, which would otherwise keep it waiting for as long as
    new steps are ready."""

    def __init__(self, count: int, freed: Callable[[], None]) -> None:
        self._free, self._retrying = count, 0
        self._freed = freed
        self._cond = threading.Condition()

    @property
    def waiting(self) -> int:
        """How many retries wait for a slot."""
        return self._retrying

    def try_take(self) -> bool:
        """The scheduler's take: only when free and no retry waits for it."""
        with self._cond:
            if self._free > 0 and not self._retrying:
                self._free -= 1
                return True
            return False

    def take(self) -> None:
        """A retry's take: waits for the next free slot."""
        with self._cond:
            self._retrying += 1
            while self._free == 0:
                self._cond.wait()
            self._retrying -= 1
            self._free -= 1

    def give(self) -> None:
        """Hand a slot back, and wake the scheduler."""
        with self._cond:
            self._free += 1
            self._cond.notify()
        self._freed()


class _Held:
    """A task's hold on one slot, given back once however the task ends: by the task when its
    process exits, else by the scheduler when the task is done. None: a task run on its own."""

    def __init__(self, slots: _Slots | None) -> None:
        self._slots, self.held = slots, slots is not None  # the scheduler took it for this task

    def take(self) -> None:
        if self._slots is not None and not self.held:
            self._slots.take()
            self.held = True

    def give(self) -> None:
        if self._slots is not None and self.held:
            self.held = False
            self._slots.give()


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


def command_for(
    asset: str,
    partition: Partition,
    store_url: str,
    correlation_id: str,
    reason: str | None = None,
    *,
    force: bool = False,
    attempt_id: str | None = None,
) -> list[str]:
    return step_argv(
        asset,
        game_date=None if partition.shape == "month" else partition.game_date.isoformat(),
        month=partition.month,
        run_id=partition.run_id,
        draft_group_id=partition.draft_group_id,
        as_of=partition.as_of_iso(),
        store=store_url,
        correlation_id=correlation_id,
        season=str(partition.season) if partition.season is not None else None,
        profile=partition.profile,
        worlds=str(partition.worlds) if partition.worlds is not None else None,
        orchestrator_run_id=correlation_id,
        reason=reason,
        force="--force" if force else None,
        attempt_id=attempt_id,
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
        on_start: Callable[[str, PlannedStep], None] | None = None,
        resume: bool = True,
        only_groups: set[str] | None = None,
        reason: str | None = None,
    ) -> None:
        self.store = store
        self.graph = graph
        self.config = config
        self.correlation_id = correlation_id
        self.max_parallel = max_parallel or config.runner.max_parallel
        self.mode = mode
        self.on_task = on_task or (lambda result: None)
        self.on_start = on_start or (lambda asset, planned: None)
        self.resume, self.only_groups, self.reason = resume, only_groups, reason
        self.plan = Plan(graph=graph, partitions=[])
        self._warm: WarmWorker | None = None
        self._warm_lock = threading.Lock()
        self._state = _Schedule()
        self._logs = tempfile.TemporaryDirectory(prefix="pipeline-logs-")
        self._wake: queue.SimpleQueue[None]
        self._slots: _Slots
        self._holds: dict[NodeId, _Held]
        self._reset_slots()

    def _reset_slots(self) -> None:
        # Wakes the scheduler: a slot was given back, or a task ended.
        self._wake = queue.SimpleQueue()
        self._slots = _Slots(self.max_parallel, lambda: self._wake.put(None))
        self._holds = {}  # each running task's slot

    # ---- one task ---------------------------------------------------------------------
    def _launch(self, argv: list[str], log_base: Path, timeout: int) -> int:
        env = dict(os.environ)
        stdout, stderr = log_base.with_suffix(".out"), log_base.with_suffix(".err")
        if self._warm is not None:
            try:
                return self._warm.run(argv, stdout=stdout, stderr=stderr, env=env, timeout=timeout)
            except OSError:
                # The warm process died (killed, out of memory): start another, and run this
                # step in a fresh interpreter meanwhile, so one lost worker loses no step.
                self._restart_warm()
        return run_subprocess(argv, stdout=stdout, stderr=stderr, env=env, timeout=timeout)

    def _restart_warm(self) -> None:
        with self._warm_lock:
            if self._warm is not None and not self._warm.alive:
                self._warm.close()
                try:
                    self._warm = WarmWorker(spares=self.max_parallel)
                except (OSError, RuntimeError):
                    self._warm = None  # fresh interpreters from here on

    def _keep_logs(self, asset: str, partition: Partition, attempt: int, log_base: Path) -> list[str]:
        """The attempt's stdout and stderr in the store; a stream it left empty is not kept."""
        keys = []
        for suffix, stream in ((".out", "stdout"), (".err", "stderr")):
            path = log_base.with_suffix(suffix)
            data = path.read_bytes() if path.exists() else b""
            if data:
                key = layout.log_key(asset, partition.key, attempt, stream)
                with_store_retries(partial(self.store.put_bytes, key, data))
                keys.append(key)
        return keys

    def run_task(self, node: PlannedStep) -> TaskResult:
        """One step partition, with its retries. Whatever goes wrong around it (a lost
        worker, a store that stays down) ends this step as failed, never the range."""
        result = self._result(node, "failed")
        result.started_at = time.time()
        began = time.perf_counter()
        slot = self._holds.get(node.id) or _Held(None)
        try:
            self._attempts(node, result, slot)
        except Exception as exc:
            result.status, result.error_type = "failed", "RunnerError"
            result.error = f"the runner could not run or read this step: {type(exc).__name__}: {exc}"
        finally:
            slot.give()
        result.wall_s = time.perf_counter() - began
        return result

    def _attempts(self, node: PlannedStep, result: TaskResult, slot: _Held) -> None:
        asset, partition = node.asset, node.partition
        spec = self.graph.specs[asset]
        limit = spec.retries if spec.retries is not None else self.config.runner.retries.limit
        for attempt in range(1, limit + 2):
            if attempt > 1:
                time.sleep(self.config.runner.retries.delay(attempt))  # no slot held meanwhile
                slot.take()
            attempt_id = new_attempt_id()
            argv = [
                *command_for(
                    asset,
                    partition,
                    self.store.url,
                    self.correlation_id,
                    self.reason,
                    force=not self.resume,
                    attempt_id=attempt_id,
                ),
                "--attempt",
                str(attempt),
            ]
            # No dots in the name: the streams are told apart by their suffix.
            stem = f"{asset}-{partition.segments()}-{attempt}".replace(".", "_").replace("/", "-")
            log_base = Path(self._logs.name) / stem
            try:
                rc = self._launch(argv, log_base, spec.timeout_s)
            finally:
                slot.give()  # the process has exited: the next step may start while this one is read
            result.attempts = attempt
            result.log_keys += self._keep_logs(asset, partition, attempt, log_base)
            try:
                manifest = with_store_retries(lambda: read_manifest(self.store, asset, partition.key))
            except ManifestError as exc:
                manifest, result.error_type, result.error = None, "ManifestError", str(exc)
            ours = manifest is not None and manifest.attempt_id == attempt_id
            if rc == 0 and manifest is not None and manifest.status in ("success", *STOPPED_SHORT):
                result.take_manifest(manifest, reused=not ours)
                return
            if ours and manifest is not None and manifest.error is not None:
                result.error_type, result.error = manifest.error.type, manifest.error.message
                result.manifest_key = record_of(manifest)[0]
            elif rc == TIMED_OUT:
                result.error_type = "TimedOut"
                result.error = f"killed after its timeout of {spec.timeout_s}s (StepSpec.timeout_s)"
            elif rc != 0:
                err = log_base.with_suffix(".err")
                tail = err.read_text(errors="replace")[-500:] if err.exists() else ""
                result.error_type = "Crashed" if rc < 0 else "ExitCode"
                result.error = f"step exited {rc} without a manifest; stderr tail: {tail.strip()}"
            if rc == EXIT_NOT_RETRYABLE:
                return  # the same arguments fail the same way

    def _result(self, node: PlannedStep, status: TaskStatus, reason: str = "") -> TaskResult:
        p = node.partition
        return TaskResult(
            p.game_date, p.run_id, node.asset, status, reason=reason, key=p.key, slate=node.slate
        )

    # ---- the schedule -----------------------------------------------------------------
    def start_workers(self) -> None:
        """Start the warm worker (its imports take seconds) ahead of `run`, which otherwise
        starts it; `run` stops it when it ends."""
        if self.mode == "warm" and self._warm is None:
            self._warm = WarmWorker(spares=self.max_parallel)

    def run(self, plan: Plan) -> list[TaskResult]:
        self.plan = plan
        state = self._state = _Schedule()
        self._reset_slots()
        for node in list(plan.nodes.values()):
            self._admit(node, state.results, state.admitted)
        self._decide_admitted()
        results, stopped = state.results, ""
        try:
            if state.ready:
                self.start_workers()
            # Twice the slots: a step that ended is read on its thread while the next one runs.
            with ThreadPoolExecutor(max_workers=2 * self.max_parallel) as pool:
                self._execute(pool)
        except Exception as exc:  # the range still ends with a result for every step, and a summary
            stopped = f"the runner stopped: {type(exc).__name__}: {exc}"
        finally:
            if self._warm is not None:
                self._warm.close()
                self._warm = None
        for node_id, node in plan.nodes.items():
            if node_id not in results:
                status: TaskStatus = "failed" if stopped else "blocked"
                results[node_id] = self._result(node, status, stopped or "never became ready")
                if stopped:
                    results[node_id].error_type, results[node_id].error = "RunnerError", stopped
        return [results[n] for n in plan.nodes]

    def _execute(self, pool: ThreadPoolExecutor) -> None:
        """Start what is ready while a run slot and its permits are free; on each completion,
        look again only at the steps that were waiting for it."""
        state, permits = self._state, dict(self.config.limits)
        running: dict[Future[TaskResult], NodeId] = {}
        while True:
            deferred = []
            while state.ready:
                order, node_id = heapq.heappop(state.ready)
                groups = self.graph.specs[node_id[0]].concurrency
                if any(permits.get(g, 1) <= 0 for g in groups):
                    deferred.append((order, node_id))
                    continue
                if not self._slots.try_take():
                    deferred.append((order, node_id))
                    break
                for g in groups:
                    permits[g] = permits.get(g, 1) - 1
                node = self.plan.nodes[node_id]
                self.on_start(node.asset, node)
                self._holds[node_id] = _Held(self._slots)
                future = pool.submit(self.run_task, node)
                future.add_done_callback(lambda _: self._wake.put(None))
                running[future] = node_id
            for item in deferred:
                heapq.heappush(state.ready, item)
            if not running:
                return
            self._wake.get()
            for future in [f for f in running if f.done()]:
                node_id = running.pop(future)
                self._holds.pop(node_id).give()  # unless its task gave it back already
                # A source's permit is held until the step is read: a retry may still use it.
                for g in self.graph.specs[node_id[0]].concurrency:
                    permits[g] = permits.get(g, 1) + 1
                self._record(self.plan.nodes[node_id], future.result())

    def _admit(self, node: PlannedStep, results: dict[NodeId, TaskResult], admitted: deque[NodeId]) -> None:
        """A node joins the schedule: reused at once (into `results`), or queued (`admitted`)
        to be decided on once what admitted it is done. Both are the schedule's own, passed
        through `_after`, which admits a slate's draft groups."""
        if node.action == "reuse":
            reused = self._result(node, "reused", node.reason)
            reused.manifest_key = layout.manifest_run_prefix(node.asset, node.partition.key)
            results[node.id] = reused
            self._record(node, reused, announce=False)
        else:
            admitted.append(node.id)

    def _decide_admitted(self) -> None:
        state = self._state
        while state.admitted:
            node_id = state.admitted.popleft()
            state.order.setdefault(node_id, len(state.order))
            self._watch(self.plan.nodes[node_id])

    def _watch(self, node: PlannedStep) -> None:
        """Queue a pending step partition when it is ready, hold it back (blocked, not_due)
        when what it reads did not succeed, or wait for what it reads that has not finished."""
        state = self._state
        missing = {n for n in [*node.needs, *node.after, *node.gate] if n not in state.results}
        if node.fan_in is not None and node.fan_in not in self.plan.draft_groups:
            source = (DRAFT_GROUP_SOURCE[0], node.fan_in)
            if source in self.plan.nodes and source not in state.results:
                missing.add(source)
        if missing:
            state.waiting[node.id] = missing
            for needed in missing:
                state.waiters.setdefault(needed, []).append(node.id)
            return
        readiness = self._readiness(node, state.results)
        if readiness == "ready":
            heapq.heappush(state.ready, (state.order[node.id], node.id))
        elif readiness != "wait":  # "wait" here cannot change: it ends "never became ready"
            held = self._result(node, readiness, self._why(node, state.results))  # type: ignore[arg-type]
            self._record(node, held)

    def _record(self, node: PlannedStep, result: TaskResult, *, announce: bool = True) -> None:
        state = self._state
        state.results[node.id] = result
        if announce:
            self.on_task(result)
        self._after(node, result, state.results, state.admitted)
        self._decide_admitted()
        for waiter in state.waiters.pop(node.id, []):
            missing = state.waiting[waiter]
            missing.discard(node.id)
            if not missing:
                del state.waiting[waiter]
                self._watch(self.plan.nodes[waiter])  # needs may have grown (draft groups)

    def _after(
        self,
        node: PlannedStep,
        result: TaskResult,
        results: dict[NodeId, TaskResult],
        admitted: deque[NodeId],
    ) -> None:
        """A slate's draft groups join the plan once its `dk.salaries` has listed them."""
        if node.asset != DRAFT_GROUP_SOURCE[0] or result.status not in ("success", "reused"):
            return
        key = node.partition.key
        groups = with_store_retries(lambda: groups_from_store(self.store, key))
        if groups is None:
            return
        try:
            added = expand_draft_groups(
                self.plan, self.store, key, groups, resume=self.resume, only=self.only_groups
            )
        except StoreError:
            # The new partitions were added; deciding them reads their manifests. With the
            # store down they stay to run: each step then finds its own success manifest.
            added = [
                n
                for n in self.plan.nodes.values()
                if n.partition.draft_group_id is not None
                and (n.partition.game_date, n.partition.run_id) == (key.game_date, key.run_id)
                and n.id not in results
                and n.action == "run"
            ]
        for new in added:
            self._admit(new, results, admitted)

    def _readiness(self, node: PlannedStep, results: dict[NodeId, TaskResult]) -> str:
        if any(n not in results for n in [*node.needs, *node.after, *node.gate]):
            return "wait"
        if node.fan_in is not None and node.fan_in not in self.plan.draft_groups:
            source = (DRAFT_GROUP_SOURCE[0], node.fan_in)
            if source in results and results[source].status in ("failed", "blocked", *STOPPED_SHORT):
                return held_back({source[0]: results[source].status})[0]  # type: ignore[index]
            return "wait" if source in self.plan.nodes else "blocked"
        held = held_back(
            {node_label(*n): results[n].status for n in node.needs},
            {node_label(*n): results[n].status for n in node.gate},
        )
        return held[0] if held else "ready"

    def _why(self, node: PlannedStep, results: dict[NodeId, TaskResult]) -> str:
        statuses = {node_label(*n): r.status for n in node.needs if (r := results.get(n))}
        if node.fan_in is not None and node.fan_in not in self.plan.draft_groups:
            source = (DRAFT_GROUP_SOURCE[0], node.fan_in)
            found = results.get(source)
            return f"upstream {node_label(*source)} {found.status if found else 'not run'}: no draft groups"
        gate = {node_label(*n): r.status for n in node.gate if (r := results.get(n))}
        held = held_back(statuses, gate)
        return held[1] if held else ""
