"""Prefect 3 running the pipeline's DAG of no-op steps (benchmark only; run in .venv-bench).

Reads {"dag": [[step, [steps it waits for]], ...], "workers": n, "rounds": k} on stdin: the
step partitions our runner launched, each after those it waited for. Prints one JSON line,
{"steps": n, "walls": [seconds per round], "recorded": [seconds per round], "cpus": [CPU seconds
per round]}, for `rounds` timed runs after a warm-up run that starts Prefect's ephemeral API, so
interpreter and server start-up are excluded. Each round starts once Prefect is idle, as ours
starts from an idle warm worker. `walls` end when the flow returns; `recorded` when Prefect's
database holds every task run's final state, as ours ends with every step's manifest stored.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId
from prefect.client.schemas.objects import StateType
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


def _settle(quiet_s: float = 0.5, cpu_share: float = 0.05, limit_s: float = 120.0) -> float:
    """Wait until Prefect has worked through the last round: its API server goes on writing a
    round's events after the flow returns, which made the next round run 1.1 to 7.5 s on this
    machine. Idle means using under `cpu_share` of a core over `quiet_s`. Returns the CPU
    seconds used so far, so a round's CPU counts all of its work and none of the next's."""
    deadline = time.monotonic() + limit_s
    used = _cpu_s()
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = _cpu_s()
        if now - used < cpu_share * quiet_s:
            return now
        used = now
    return used


@task
def noop(step: str) -> str:
    return step


def run(dag: list[list[Any]], workers: int) -> UUID:
    """The flow run's id, once the flow has returned."""

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=workers))
    def steps() -> None:
        futures: dict[str, Any] = {}
        for step, waits in dag:
            futures[step] = noop.submit(step, wait_for=[futures[w] for w in waits])
        for future in futures.values():
            future.result()

    flow_run_id = steps(return_state=True).state_details.flow_run_id
    assert flow_run_id is not None
    return flow_run_id


def _last_recorded(flow_run_id: UUID, steps: int) -> datetime:
    """When Prefect's database took the last of the flow run's task-run states. A task run
    reports its states as events, which its API server stores after the flow has returned;
    `updated` is the row's own time, set by the database as it stores each state."""
    with get_client(sync_client=True) as client:
        runs, page = [], 200  # the API's largest page
        while batch := client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id])),
            limit=page,
            offset=len(runs),
        ):
            runs += batch
    unfinished = [r.name for r in runs if r.state_type != StateType.COMPLETED]
    if len(runs) != steps or unfinished:
        raise SystemExit(
            f"flow run {flow_run_id}: {len(runs)} task runs of {steps}, not completed: {unfinished}"
        )
    return max(r.updated for r in runs if r.updated is not None)


if __name__ == "__main__":
    request = json.load(sys.stdin)
    dag, workers = request["dag"], int(request["workers"])
    run(dag, workers)  # warm-up: starts the ephemeral API
    walls, recorded, cpus = [], [], []
    cpu = _settle()
    for _ in range(int(request.get("rounds", 1))):
        began, clock = time.perf_counter(), datetime.now(UTC)
        flow_run_id = run(dag, workers)
        walls.append(time.perf_counter() - began)
        cpus.append((done := _settle()) - cpu)
        cpu = done
        recorded.append((_last_recorded(flow_run_id, len(dag)) - clock).total_seconds())
    print(json.dumps({"steps": len(dag), "walls": walls, "recorded": recorded, "cpus": cpus}))
