"""What every benchmark shares: copies of the seeded store, CPU time, a runner over a range."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from steps.runtime.manifest import STOPPED_SHORT
from steps.runtime.store import Store, open_store
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph
from workflows.dag.plan import make_plan
from workflows.local.runner import LocalRunner

RANGE = (date(2024, 11, 12), date(2024, 11, 15))


def copy_store(template: Path, work: Path, name: str) -> tuple[Path, Store]:
    root = work / name
    shutil.copytree(template, root)
    return root, open_store(f"file://{root}")


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _started_cpu_s(runner: LocalRunner) -> float:
    """The CPU a warm worker started before `run` has spent so far (its imports), which its
    exit adds to this process's children's; 0 when none was started."""
    warm = getattr(runner, "_warm", None)
    if warm is None:
        return 0.0
    fields = Path(f"/proc/{warm.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_runner(
    store: Store, *, mode: str, parallel: int, cls: type[LocalRunner] = LocalRunner
) -> LocalRunner:
    return cls(
        store,
        pipeline_graph(),
        load_config(),
        correlation_id=f"bench-{mode}-{parallel}",
        max_parallel=parallel,
        mode=mode,  # type: ignore[arg-type]
    )


def run_range(
    store: Store, start: date, end: date, *, mode: str, parallel: int, runner: LocalRunner | None = None
) -> dict[str, float]:
    runner = runner or make_runner(store, mode=mode, parallel=parallel)
    plan = make_plan(store, runner.graph, runner.config, start=start, end=end)
    started = _started_cpu_s(runner)
    cpu = (_cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN) + started)
    began = time.perf_counter()
    results = runner.run(plan)
    wall = time.perf_counter() - began
    # The runner's own CPU, and that of the processes it waited for (the warm worker and
    # every step process it forked, or each fresh interpreter).
    runner_cpu = _cpu_s(resource.RUSAGE_SELF) - cpu[0]
    steps_cpu = _cpu_s(resource.RUSAGE_CHILDREN) - cpu[1]
    ran = [r for r in results if r.attempts]
    bad = [r for r in ran if r.status not in ("success", *STOPPED_SHORT)]
    assert not bad, bad[:1]
    step_s = sum(r.duration_s for r in ran)
    outside = wall * parallel - step_s  # worker time not spent inside a step's own work
    return {
        "steps": len(ran),
        "wall_s": wall,
        "step_s": step_s,
        "overhead_per_step_s": outside / len(ran),
        "outside_share": max(0.0, outside / (wall * parallel)),
        "runner_cpu_ms": runner_cpu / len(ran) * 1000,
        "steps_cpu_ms": steps_cpu / len(ran) * 1000,
    }


@contextlib.contextmanager
def patched_environ(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
