"""Prefect 3 running the pipeline's DAG of no-op steps (benchmark only; run in .venv-bench).

Prints one JSON line: {"steps": n, "wall_s": seconds} for the timed run (after a warm-up run
that starts Prefect's ephemeral API), so interpreter and server start-up are excluded.
"""

from __future__ import annotations

import json
import sys
import time

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from workflows.graph import pipeline_graph


@task
def noop(asset: str, game_date: str) -> str:
    return f"{asset}@{game_date}"


def run(dates: list[str], workers: int) -> int:
    graph = pipeline_graph()

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=workers))
    def dag() -> None:
        futures = {}
        for day in dates:
            for asset in graph.order:
                waits = [futures[(day, up)] for up in graph.deps[asset]]
                futures[(day, asset)] = noop.submit(asset, day, wait_for=waits)
        for future in futures.values():
            future.result()

    dag()
    return len(dates) * len(graph.order)


if __name__ == "__main__":
    days, workers = json.loads(sys.argv[1]), int(sys.argv[2])
    run(days[:1], workers)  # warm-up: starts the ephemeral API
    began = time.perf_counter()
    steps = run(days, workers)
    print(json.dumps({"steps": steps, "wall_s": time.perf_counter() - began}))
