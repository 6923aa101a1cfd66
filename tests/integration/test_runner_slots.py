"""The local runner's run slots (`--max-parallel`) and permits (`limits`): never more step
processes at once than either allows; a slot is handed on the moment its process exits; and a
retry takes the next free slot ahead of steps that were never run."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import pytest

from steps.runtime.store import open_store
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph
from workflows.dag.plan import make_plan
from workflows.local.runner import LocalRunner, _Slots

DAYS = (date(2024, 11, 18), date(2024, 11, 19))


class Watched(LocalRunner):
    """Records each step process: when it ran, and what ran beside it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lock = threading.Lock()
        self.launches: list[tuple[float, float, str, str]] = []  # start, end, asset, argv's --attempt
        self.running: list[str] = []
        self.peak_all = 0
        self.peak_groups: dict[str, int] = {}

    def _launch(self, argv: list[str], log_base: Path, timeout: int) -> int:
        asset = argv[3]
        with self.lock:
            self.running.append(asset)
            self.peak_all = max(self.peak_all, len(self.running))
            for group in self.graph.specs[asset].concurrency:
                now = sum(group in self.graph.specs[a].concurrency for a in self.running)
                self.peak_groups[group] = max(self.peak_groups.get(group, 0), now)
        began = time.monotonic()
        try:
            return self.launch(argv, log_base, timeout)
        finally:
            with self.lock:
                self.running.remove(asset)
                self.launches.append((began, time.monotonic(), asset, argv[argv.index("--attempt") + 1]))

    def launch(self, argv: list[str], log_base: Path, timeout: int) -> int:
        return super()._launch(argv, log_base, timeout)


def _runner(cls: type[Watched], seeded: str, config_path: Path, text: str, parallel: int) -> Watched:
    config_path.write_text(text)
    store, config = open_store(seeded), load_config(str(config_path))
    return cls(store, pipeline_graph(), config, correlation_id="slots", max_parallel=parallel)


def _plan(runner: LocalRunner):  # type: ignore[no-untyped-def]
    return make_plan(runner.store, runner.graph, runner.config, start=DAYS[0], end=DAYS[1])


@pytest.fixture(autouse=True)
def _noop(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machinery only, so each step is quick; a slate's draft groups still come from its
    # dk.salaries, which runs for real.
    noop = [f"{asset}@*=noop" for asset in pipeline_graph().order if asset != "dk.salaries"]
    monkeypatch.setenv("PIPELINE_FAULTS", ";".join(noop))


def test_no_more_step_processes_at_once_than_slots_and_permits(seeded: str, tmp_path: Path) -> None:
    config = "runner:\n  max_parallel: 3\nlimits: {source.schedule: 1, source.injuries: 1, source.odds: 1}\n"
    runner = _runner(Watched, seeded, tmp_path / "pipeline.yaml", config, 3)
    results = runner.run(_plan(runner))
    assert all(r.status in ("success", "not_due") for r in results), [(r.label, r.error) for r in results]
    assert runner.peak_all == 3  # the slots were used, and never exceeded
    assert runner.peak_groups and max(runner.peak_groups.values()) == 1, runner.peak_groups


def test_a_slot_is_handed_on_when_the_step_process_exits(seeded: str, tmp_path: Path) -> None:
    """With one slot, the next step starts while the one before is still being read."""

    class SlowReader(Watched):
        launched = 0
        second_started = threading.Event()
        overlapped: bool | None = None

        def launch(self, argv: list[str], log_base: Path, timeout: int) -> int:
            self.launched += 1
            if self.launched > 1:
                self.second_started.set()
            return super().launch(argv, log_base, timeout)

        def _keep_logs(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if self.overlapped is None:  # the first step: hold its reading until another starts
                self.overlapped = self.second_started.wait(timeout=20)
            return super()._keep_logs(*args, **kwargs)

    runner = _runner(SlowReader, seeded, tmp_path / "pipeline.yaml", "runner:\n  max_parallel: 1\n", 1)
    results = runner.run(_plan(runner))
    assert runner.overlapped is True
    assert all(r.status in ("success", "not_due") for r in results), [(r.label, r.error) for r in results]
    starts = sorted(b for b, _, _, _ in runner.launches)
    ends = sorted(e for _, e, _, _ in runner.launches)
    assert all(s >= e for s, e in zip(starts[1:], ends, strict=False))  # one process at a time still


def test_a_retry_takes_the_next_free_slot(seeded: str, tmp_path: Path) -> None:
    """A step that crashed waits out its backoff without a slot, then runs again as soon as
    one is free, not after every step that became ready meanwhile."""
    flaky = "ingest.roster"

    class Crashing(Watched):
        def launch(self, argv: list[str], log_base: Path, timeout: int) -> int:
            first = (
                argv[3] == flaky and argv[argv.index("--attempt") + 1] == "1" and DAYS[0].isoformat() in argv
            )
            return 1 if first else super().launch(argv, log_base, timeout)

    delay = 0.3
    config = f"runner:\n  max_parallel: 1\n  retries: {{limit: 1, backoff_seconds: {delay}, factor: 1}}\n"
    runner = _runner(Crashing, seeded, tmp_path / "pipeline.yaml", config, 1)
    results = runner.run(_plan(runner))
    [result] = [r for r in results if r.asset == flaky and r.partition_key.game_date == DAYS[0]]
    assert (result.status, result.attempts) == ("success", 2), result.error
    crashed = next(e for _, e, a, n in runner.launches if a == flaky and n == "1")
    retried = next(b for b, _, a, n in runner.launches if a == flaky and n == "2")
    # Once its backoff is over, only the step already running may start before it.
    between = [a for b, _, a, _ in runner.launches if crashed + delay + 0.05 < b < retried]
    assert len(between) <= 1, between
    assert len([b for b, _, _, _ in runner.launches if b > retried]) > 5  # others were still ready


def test_a_waiting_retry_gets_the_slot_before_the_scheduler() -> None:
    """The rule itself, without the race: once a retry waits, a slot given back is its own,
    even when the scheduler asks first."""
    slots = _Slots(1, lambda: None)
    assert slots.try_take()
    retry = threading.Thread(target=slots.take, daemon=True)
    retry.start()
    deadline = time.monotonic() + 10
    while not slots.waiting and time.monotonic() < deadline:
        time.sleep(0.001)
    assert slots.waiting == 1
    slots.give()
    assert not slots.try_take()  # the retry is owed it, woken or not
    retry.join(timeout=10)
    assert not retry.is_alive() and not slots.try_take()  # the retry holds it now
    slots.give()
    assert slots.try_take()
