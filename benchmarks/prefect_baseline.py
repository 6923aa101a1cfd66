"""Prefect 3 running the pipeline's DAG of no-op steps (benchmark only; run in .venv-bench).

Reads {"dag": [[step, [steps it waits for]], ...], "workers": n, "rounds": k} on stdin: the
step partitions our runner launched, each after those it waited for. Prints one JSON line,
{"steps": n, "walls": [seconds per round], "cpus": [CPU seconds per round]}, for `rounds` timed runs after a warm-up run that
starts Prefect's ephemeral API, so interpreter and server start-up are excluded.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner


def _cpu_s() -> float:
    """CPU seconds of this process and of its live children: Prefect's ephemeral API is a
    server process of its own, which does much of each task's work (a round's events may
    finish in the next round; the rounds' total is what counts)."""
    pids = [os.getpid()]
    with contextlib.suppress(OSError):
        for task_dir in Path(f"/proc/{os.getpid()}/task").iterdir():
            children = (task_dir / "children").read_text().split()
            pids += [int(c) for c in children]
    total = 0.0
    for pid in set(pids):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@task
def noop(step: str) -> str:
    return step


def run(dag: list[list[Any]], workers: int) -> int:
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=workers))
    def steps() -> None:
        futures: dict[str, Any] = {}
        for step, waits in dag:
            futures[step] = noop.submit(step, wait_for=[futures[w] for w in waits])
        for future in futures.values():
            future.result()

    steps()
    return len(dag)


if __name__ == "__main__":
    request = json.load(sys.stdin)
    dag, workers = request["dag"], int(request["workers"])
    run(dag, workers)  # warm-up: starts the ephemeral API
    walls, cpus = [], []
    for _ in range(int(request.get("rounds", 1))):
        began, cpu = time.perf_counter(), _cpu_s()
        steps = run(dag, workers)
        walls.append(time.perf_counter() - began)
        cpus.append(_cpu_s() - cpu)
    print(json.dumps({"steps": steps, "walls": walls, "cpus": cpus}))
