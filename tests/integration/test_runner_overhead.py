"""The mechanisms that keep a step's overhead small keep their meaning: lock-free create-only
writes and locks on the objects themselves (directory store), pre-forked warm children that
report every exit status, a parser built once, and the step profile `make bench` reads."""

from __future__ import annotations

import multiprocessing as mp
import os
import pstats
import signal
import time
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import pytest

from steps.cli import command
from steps.cli import main as steps_main
from steps.runtime.errors import PreconditionFailed, StoreUnavailable
from steps.runtime.manifest import read_manifest
from steps.runtime.partition import Partition
from steps.runtime.store import Store, open_store
from workflows.dag.config import load_config
from workflows.dag.draft_groups import expand_draft_groups
from workflows.dag.graph import pipeline_graph
from workflows.dag.plan import make_plan
from workflows.local.runner import LocalRunner
from workflows.local.warm import PROFILE_ENV, STEP_NICENESS, WarmWorker

DAY = "2024-11-18"
LATE = "2024-11-18T23:30:00Z"


def _increment(url: str, rounds: int, queue: mp.Queue[list[int]]) -> None:
    """Compare-and-swap a counter `rounds` times, retrying on every lost race."""
    store = open_store(url)
    won = []
    for _ in range(rounds):
        while True:
            data, etag = store.get_with_etag("c/counter")
            try:
                store.put_if("c/counter", str(int(data) + 1).encode(), if_match=etag)
            except PreconditionFailed:
                continue
            won.append(int(data) + 1)
            break
    queue.put(won)


def _create(url: str, worker: int, queue: mp.Queue[int | None]) -> None:
    try:
        open_store(url).put_if("c/once", str(worker).encode(), if_none_match=True)
        queue.put(worker)
    except PreconditionFailed:
        queue.put(None)


def _contend(target, args_per_worker: list[tuple]) -> list:  # type: ignore[no-untyped-def, type-arg]
    ctx = mp.get_context("spawn")
    queue: mp.Queue[Any] = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, queue)) for args in args_per_worker]
    for p in procs:
        p.start()
    found = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return found


def test_directory_compare_and_swap_loses_no_update_across_processes(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 'store'}", create=True)
    store.put_if("c/counter", b"0", if_none_match=True)
    workers, rounds = 4, 15
    won = _contend(_increment, [(store.url, rounds)] * workers)
    values = sorted(v for w in won for v in w)
    assert values == list(range(1, workers * rounds + 1))  # every swap saw the one before it
    assert store.get_bytes("c/counter") == str(workers * rounds).encode()


def test_directory_create_only_has_one_winner_across_processes(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 'store'}", create=True)
    found = _contend(_create, [(store.url, w) for w in range(6)])
    winners = [w for w in found if w is not None]
    assert len(winners) == 1
    assert store.get_bytes("c/once") == str(winners[0]).encode()


def test_conditional_writes_leave_no_file_per_write(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_store(f"file://{root}", create=True)
    etag = store.put_if("p/ptr.json", b"v1", if_none_match=True)
    store.put_if("p/ptr.json", b"v2", if_match=etag)
    for n in range(5):
        store.put_if(f"events/e{n}.json", b"{}", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        store.put_if("p/ptr.json", b"v3", if_none_match=True)
    assert not (root / ".locks").exists()
    assert list((root / ".tmp").iterdir()) == []  # every temp file was published or removed
    assert store.get_bytes("p/ptr.json") == b"v2"


def test_the_parser_is_built_once_and_parses_every_call_alike(capsys: pytest.CaptureFixture[str]) -> None:
    assert command() is command()
    assert steps_main(["no.such.step", "--as-of", LATE, "--store", "file:///nowhere"]) == 2
    assert steps_main(["ingest.roster"]) == 2  # a usage error: --as-of and --store are required
    assert steps_main(["--help"]) == 0
    assert "--as-of" in capsys.readouterr().out


def _warm_run(warm: WarmWorker, tmp_path: Path, argv: list[str], name: str, **env: str) -> tuple[int, str]:
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    code = warm.run(["python", "-m", "steps", *argv], stdout=out, stderr=err, env={**os.environ, **env})
    return code, out.read_text() + err.read_text()


def test_warm_children_report_every_exit_status(seeded: str, tmp_path: Path) -> None:
    roster = ["ingest.roster", "--game-date", DAY, "--as-of", LATE, "--store", seeded]
    with WarmWorker(spares=1) as warm:
        code, text = _warm_run(warm, tmp_path, [*roster, "--run-id", "ok"], "ok")
        assert code == 0, text
        code, text = _warm_run(warm, tmp_path, ["no.such.step", "--as-of", LATE, "--store", seeded], "bad")
        assert code == 2 and "unknown step" in text
        faults = {"PIPELINE_FAULTS": "ingest.roster@*=kill"}
        code, _ = _warm_run(warm, tmp_path, [*roster, "--run-id", "killed"], "killed", **faults)
        assert code == -signal.SIGKILL  # reported by the server from the wait status
        # Each request runs with its own environment, in its own process.
        code, text = _warm_run(warm, tmp_path, [*roster, "--run-id", "again"], "again")
        assert code == 0, text
        assert warm.alive


def test_more_steps_at_once_than_spares(seeded: str, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def run(n: int) -> int:
        argv = ["ingest.odds", "--game-date", DAY, "--as-of", LATE, "--store", seeded, "--run-id", f"p{n}"]
        return _warm_run(warm, tmp_path, argv, f"p{n}")[0]

    with WarmWorker(spares=1) as warm, ThreadPoolExecutor(4) as pool:
        assert list(pool.map(run, range(8))) == [0] * 8


def _niceness(pid: int) -> int:
    # /proc/<pid>/stat: the command is in parentheses; niceness is the 19th field in all.
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _children(pid: int) -> list[int]:
    # The warm process forks from its main thread, whose id is the process's.
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_step_runs_nicer_than_the_worker_that_hands_out_slots(seeded: str, tmp_path: Path) -> None:
    """So the next step's hand-off is not queued behind the steps already running. Every child
    of the warm process is a spare or a step, and each is niced when it is forked."""
    from concurrent.futures import ThreadPoolExecutor

    argv = ["ingest.injuries", "--game-date", DAY, "--as-of", LATE, "--store", seeded, "--run-id", "nice"]
    with WarmWorker(spares=1) as warm, ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            _warm_run, warm, tmp_path, argv, "nice", PIPELINE_FAULTS="ingest.injuries@*=sleep:2"
        )
        want = {min(19, _niceness(os.getpid()) + STEP_NICENESS)}  # niceness stops at 19
        children: list[int] = []
        niceness: set[int] = set()
        deadline = time.monotonic() + 10
        # The step's process and the spare forked to replace it (niced a moment after its
        # fork), while the step sleeps.
        while not running.done() and time.monotonic() < deadline:
            children = _children(warm.proc.pid)
            niceness = {_niceness(pid) for pid in children}
            if len(children) >= 2 and niceness == want:
                break
            time.sleep(0.02)
        code, text = running.result()
        assert _niceness(warm.proc.pid) == _niceness(os.getpid())
    assert code == 0, text
    assert len(children) >= 2 and niceness == want, (children, niceness)


def test_the_profile_hook_leaves_one_statistics_file_per_step(seeded: str, tmp_path: Path) -> None:
    stats = tmp_path / "stats"
    stats.mkdir()
    argv = ["ingest.lineups", "--game-date", DAY, "--as-of", LATE, "--store", seeded, "--run-id", "prof"]
    with WarmWorker() as warm:
        code, text = _warm_run(warm, tmp_path, argv, "prof", **{PROFILE_ENV: str(stats)})
    assert code == 0, text
    [dump] = list(stats.glob("step-*.pstats"))
    names = {name for _, _, name in pstats.Stats(str(dump)).stats}  # type: ignore[attr-defined]
    assert "execute" in names


class _Down(Store):
    """A store that does not answer."""

    url = "s3://down"

    def _fail(self, *_: object, **__: object) -> NoReturn:
        raise StoreUnavailable("the store is down")

    put_bytes = get_bytes = get_with_etag = put_if = stat = list = list_dirs = delete = _fail


def test_draft_groups_still_run_when_the_store_fails_while_they_are_decided(
    seeded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deciding a slate's new draft-group partitions reads their manifests; a store that
    fails then leaves them to run (each step finds its own manifest), never stops the range."""
    graph = pipeline_graph()
    monkeypatch.setenv("PIPELINE_FAULTS", ";".join(f"{a}@*=noop" for a in graph.order if a != "dk.salaries"))
    monkeypatch.setattr(
        "workflows.local.runner.expand_draft_groups",
        lambda plan, _store, *a, **k: expand_draft_groups(plan, _Down(), *a, **k),
    )
    store, config = open_store(seeded), load_config()
    plan = make_plan(store, graph, config, start=date(2024, 11, 18), end=date(2024, 11, 18))
    results = LocalRunner(store, graph, config, correlation_id="down", max_parallel=2).run(plan)
    groups = [r for r in results if r.partition_key.draft_group_id is not None]
    assert groups and all(r.status == "success" for r in groups), [
        (r.label, r.status, r.error) for r in groups
    ]
    assert all(r.status in ("success", "not_due") for r in results), [(r.label, r.error) for r in results]


def test_a_window_with_no_settled_slates_reads_as_no_rows(seeded: str) -> None:
    """A season's first slate: its season-to-date window holds nothing yet (the season
    benchmark starts there)."""
    argv = ["tracking.roles", "--game-date", DAY, "--as-of", LATE, "--store", seeded, "--run-id", "first"]
    assert steps_main(argv) == 0
    manifest = read_manifest(
        open_store(seeded),
        "tracking.roles",
        Partition.build(shape="season_to_date", game_date=DAY, run_as_of_ts=LATE, run_id="first").key,
    )
    assert manifest is not None and manifest.status == "success"
    assert manifest.metrics["players"] == 0
