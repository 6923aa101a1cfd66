"""Prefect 3 running the pipeline's DAG of no-op steps (benchmark only; run in .venv-bench).

Reads {"dag": [[step, [steps it waits for]], ...], "workers": n, "rounds": k} on stdin: the
step partitions our runner launched, each after those it waited for. Prints one JSON line,
{"steps": n, "walls": [seconds per round]}, for `rounds` timed runs after a warm-up run that
starts Prefect's ephemeral API, so interpreter and server start-up are excluded.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner


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
    walls = []
    for _ in range(int(request.get("rounds", 1))):
        began = time.perf_counter()
        steps = run(dag, workers)
        walls.append(time.perf_counter() - began)
    print(json.dumps({"steps": steps, "walls": walls}))
