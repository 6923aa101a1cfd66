"""The local runner's overhead per step: fresh interpreter against warm worker, against Prefect 3, and profiled."""

from __future__ import annotations

import contextlib
import cProfile
import functools
import io
import json
import os
import pstats
import subprocess
import threading
from pathlib import Path
from typing import Any

from benchmarks.harness import RANGE, copy_store, make_runner, patched_environ, run_range
from steps.cli import main as steps_main
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.store import Store
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph
from workflows.dag.model import NodeId, Plan, PlannedStep
from workflows.dag.outcome import TaskResult
from workflows.dag.plan import make_plan
from workflows.local.runner import LocalRunner, command_for


# ---- 1. runner overhead: warm worker vs fresh interpreter ---------------------------------
def runner_overhead(template: Path, work: Path) -> list[dict[str, Any]]:
    rows = []
    for mode in ("subprocess", "warm"):
        _, store = copy_store(template, work, f"overhead-{mode}")
        rows.append({"mode": mode, **run_range(store, *RANGE, mode=mode, parallel=1)})
    return rows


# ---- 2. against Prefect 3, same DAG of no-op steps ----------------------------------------
def _noop_store(template: Path, work: Path, name: str) -> Store:
    """A copy of the template whose slates' `dk.salaries` ran for real, untimed: a no-op one
    lists no draft groups, and a quarter of the DAG hangs off them."""
    _, store = copy_store(template, work, name)
    plan = make_plan(store, pipeline_graph(), load_config(), start=RANGE[0], end=RANGE[1])
    with contextlib.redirect_stdout(io.StringIO()):
        for node in plan.nodes.values():
            if node.asset == DRAFT_GROUP_SOURCE[0]:
                argv = command_for(node.asset, node.partition, store.url, "bench-setup")
                assert steps_main(argv[3:]) == 0, node.id
    return store


def _launched_dag(plan: Plan, launched: set[NodeId]) -> list[list[Any]]:
    """The step partitions the runner launched and the launched ones each waited for, in an
    order where every step follows those it waits for: what Prefect runs."""
    nodes = plan.nodes
    deps = {
        n: [d for d in (*nodes[n].needs, *nodes[n].after, *nodes[n].gate) if d in launched] for n in launched
    }
    order: list[Any] = []
    placed: set[Any] = set()
    while len(order) < len(launched):
        ready = [n for n in nodes if n in launched and n not in placed and all(d in placed for d in deps[n])]
        assert ready, "the launched steps form a cycle"
        order += ready
        placed.update(ready)
    return [[str(n), [str(d) for d in deps[n]]] for n in order]


def _note_start(launched: set[NodeId], _: str, node: PlannedStep) -> None:
    launched.add(node.id)


def versus_prefect(template: Path, work: Path, parallel: int = 2, rounds: int = 5) -> dict[str, Any]:
    """The same no-op DAG on both, `rounds` times each, each round from an idle start. The
    report compares each side's fastest round (the medians are kept too)."""
    ours, dag = [], []
    for i in range(rounds):
        store = _noop_store(template, work, f"noop-{i}")
        launched: set[NodeId] = set()
        with patched_environ(PIPELINE_FAULTS="*@*=noop"):
            runner = make_runner(store, mode="warm", parallel=parallel)
            runner.on_start = functools.partial(_note_start, launched)
            runner.start_workers()  # its imports are start-up, as Prefect's API is: not timed
            ours.append(run_range(store, *RANGE, mode="warm", parallel=parallel, runner=runner))
        dag = _launched_dag(runner.plan, launched)
    # Prefect's own home (its SQLite database) per run: nothing shared with another Prefect.
    # Its first start migrates that database, which on a busy machine outlasts the default
    # 20 s start-up limit; start-up is not timed anyway.
    env = dict(
        os.environ,
        PREFECT_LOGGING_LEVEL="ERROR",
        PREFECT_HOME=str(work / "prefect-home"),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    done = subprocess.run(
        [".venv-bench/bin/python", "-m", "benchmarks.prefect_baseline"],
        input=json.dumps({"dag": dag, "workers": parallel, "rounds": rounds}),
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the Prefect baseline failed: {done.stderr[-2000:]}")
    prefect = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "parallel": parallel,
        "ours": sorted(ours, key=lambda r: r["wall_s"])[rounds // 2],
        "ours_walls": [r["wall_s"] for r in ours],
        "prefect": {"steps": prefect["steps"], "wall_s": sorted(prefect["walls"])[rounds // 2]},
        "prefect_walls": prefect["walls"],
        "prefect_recorded": prefect["recorded"],
        # CPU per step over all rounds: ours, the runner and every process it waited for;
        # Prefect's, its own process and its API server's.
        "ours_cpu_ms": sum(r["runner_cpu_ms"] + r["steps_cpu_ms"] for r in ours) / rounds,
        "prefect_cpu_ms": sum(prefect.get("cpus", [])) / rounds / prefect["steps"] * 1000,
    }


class _ProfiledRunner(LocalRunner):
    """Profiles each step's runner side on its worker thread (cProfile follows one thread)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profiles: list[cProfile.Profile] = []
        self._profiles_lock = threading.Lock()

    def run_task(self, node: PlannedStep) -> TaskResult:
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            return super().run_task(node)
        finally:
            profiler.disable()
            with self._profiles_lock:
                self.profiles.append(profiler)


def profile_noop(template: Path, work: Path, parallel: int = 2, top: int = 8) -> dict[str, Any]:
    """Where a no-op step's time goes: cProfile in every step process (the warm worker's
    `PIPELINE_PROFILE_DIR`) and on the runner's threads, over the DAG of section 2."""
    store = _noop_store(template, work, "noop-profile")
    stats_dir = work / "noop-profile-stats"
    stats_dir.mkdir()
    runner = make_runner(store, mode="warm", parallel=parallel, cls=_ProfiledRunner)
    assert isinstance(runner, _ProfiledRunner)
    scheduler = cProfile.Profile()
    with patched_environ(PIPELINE_FAULTS="*@*=noop", PIPELINE_PROFILE_DIR=str(stats_dir)):
        scheduler.enable()
        figures = run_range(store, *RANGE, mode="warm", parallel=parallel, runner=runner)
        scheduler.disable()
    steps = int(figures["steps"])
    step_stats = pstats.Stats(*[str(p) for p in sorted(stats_dir.glob("step-*.pstats"))])
    runner_stats = pstats.Stats(scheduler)
    for profile in runner.profiles:
        runner_stats.add(profile)
    return {
        "steps": steps,
        "wall_s": figures["wall_s"],
        "step": _top(step_stats, steps, top),
        "runner": _top(runner_stats, steps, top),
    }


def _top(stats: pstats.Stats, steps: int, top: int) -> list[dict[str, Any]]:
    """The functions with the most own time, per step."""
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    return [
        {
            "function": _function_name(key),
            "calls": calls / steps,
            "own_ms": own / steps * 1000,
            "cumulative_ms": cumulative / steps * 1000,
        }
        for key, (_, calls, own, cumulative, _) in rows[:top]
    ]


def _function_name(key: tuple[str, int, str]) -> str:
    filename, _, name = key
    if filename == "~":  # a built-in: "<built-in method posix.fsync>", "<method 'recv' of ...>"
        return name.strip("<>").removeprefix("built-in method ")
    path = Path(filename)
    if "site-packages" in path.parts:
        path = Path(*path.parts[path.parts.index("site-packages") + 1 :])
    elif path.is_absolute() and path.is_relative_to(Path.cwd()):
        path = path.relative_to(Path.cwd())
    elif path.is_absolute():
        path = Path(path.name)
    return f"{path}:{name}"
