"""End to end: multi-day backfills with the local runner, on a directory store and MinIO."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from steps.runtime.manifest import read_manifest
from steps.runtime.store import open_store
from tests.helpers import (
    latest_summary,
    manifests_by_status,
    output_hashes,
    run_pipeline_cli,
    slate_pointer,
    slate_pointers,
)
from workflows.dag.graph import pipeline_graph

WEEK = ("2024-11-12", "2024-11-18")
GRAPH = pipeline_graph()
# Steps with one partition per slate (the rest: per month, per draft group, per window slate).
SLATE_STEPS = [a for a in GRAPH.order if GRAPH.specs[a].shape.name in ("date", "season_to_date")]


def backfill(store: str, start: str, end: str, *extra: str, env: dict[str, str] | None = None):
    return run_pipeline_cli("run", "--start", start, "--end", end, "--store", store, *extra, env=env)


def assert_complete(url: str, days: int) -> None:
    store = open_store(url)
    by_status = manifests_by_status(store)
    assert set(by_status) == {"success"}, {k: v[:3] for k, v in by_status.items() if k != "success"}
    dates = sorted({k.split("/")[0][10:] for a, k in by_status["success"] if a == "sim.run"})
    assert len(dates) == days
    for asset in SLATE_STEPS:
        assert len([1 for a, _ in by_status["success"] if a == asset]) == days, asset
    for day in dates:
        pointers = slate_pointers(store, day)
        assert pointers  # one per draft group
        groups = {
            k
            for a, k in by_status["success"]
            if a == "finalize.unified" and k.startswith(f"game_date={day}/")
        }
        assert len(groups) == len(pointers)
        for pointer in pointers:
            assert read_manifest(store, "finalize.unified", pointer.key).status == "success"


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_week_backfill_then_resume_runs_nothing(backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("seeded" if backend == "file" else "seeded_s3")
    first = backfill(url, *WEEK)
    assert first.returncode == 0, first.stdout + first.stderr
    assert_complete(url, 7)
    summary = latest_summary(open_store(url))
    assert summary["partitions"]["succeeded"] == 7 and summary["partitions"]["failed"] == 0
    assert summary["accuracy"]["mae_fp"] < summary["accuracy"]["baseline_mae_fp"]
    correlation = summary["correlation_id"]
    promoted = read_manifest(open_store(url), "promote", slate_pointer(open_store(url), "2024-11-14").key)
    m = read_manifest(open_store(url), "sim.run", promoted.key.model_copy(update={"draft_group_id": None}))
    assert m.correlation_id == correlation and m.environment.orchestrator_run_id == correlation

    again = backfill(url, *WEEK)
    assert again.returncode == 0
    assert "Nothing to do" in again.stdout
    resumed = latest_summary(open_store(url))
    assert resumed["partitions"]["reused"] == 7 and resumed["runner"]["steps_run"] == 0


def test_injected_failure_is_isolated_grouped_and_resumed(seeded: str, fast_config: str) -> None:
    env = {"PIPELINE_FAULTS": "rates.score@2024-11-14=raise"}
    result = backfill(seeded, "2024-11-13", "2024-11-15", "--config", fast_config, env=env)
    assert result.returncode == 1
    store = open_store(seeded)
    summary = latest_summary(store)
    assert summary["partitions"]["failed"] == 1 and summary["partitions"]["succeeded"] == 2
    failed = next(o for o in summary["partition_outcomes"] if o["status"] == "failed")
    assert failed["game_date"] == "2024-11-14" and failed["failed_steps"] == ["rates.score"]
    blocked = {step.split(" / ")[0] for step in failed["blocked_steps"]}  # draft groups say which
    assert {"sim.run", "finalize.unified", "promote"} <= blocked
    [group] = summary["top_errors"]
    assert group["count"] == 1 and "rates.score: InjectedFault" in group["signature"]
    assert summary["steps"]["rates.score"]["attempts"] >= 3  # retried: 2 ok dates + 2 attempts
    assert slate_pointer(store, "2024-11-14") is None

    fixed = backfill(seeded, "2024-11-13", "2024-11-15", "--config", fast_config)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    rerun = latest_summary(store)
    ran = {asset for asset, stats in rerun["steps"].items() if stats["ran"]}
    graph = pipeline_graph()
    assert ran == {"rates.score"} | (graph.downstream("rates.score"))
    assert all(stats["ran"] <= 1 for stats in rerun["steps"].values())
    assert_complete(seeded, 3)


def test_sigkill_runner_then_resume_is_byte_identical(seeded: str, tmp_path, seeded_template) -> None:
    import shutil

    reference_root = tmp_path / "reference"
    shutil.copytree(seeded_template, reference_root)
    reference = f"file://{reference_root}"
    assert backfill(reference, "2024-11-14", "2024-11-16").returncode == 0

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workflows.cli",
            "run",
            "--start",
            "2024-11-14",
            "--end",
            "2024-11-16",
            "--store",
            seeded,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = open_store(seeded)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(list(store.list("manifests/"))) >= 25:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # the kernel kills the step processes with their parent
    done = len(list(store.list("manifests/")))
    assert 0 < done < len(list(open_store(reference).list("manifests/")))

    resumed = backfill(seeded, "2024-11-14", "2024-11-16")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert output_hashes(open_store(seeded)) == output_hashes(open_store(reference))


def test_daily_run_equals_one_day_backfill(seeded: str, tmp_path, seeded_template) -> None:
    import shutil

    other_root = tmp_path / "other"
    shutil.copytree(seeded_template, other_root)
    daily = run_pipeline_cli("run", "--store", seeded, env={"PIPELINE_TODAY": "2024-11-18"})
    assert daily.returncode == 0, daily.stdout + daily.stderr
    assert "(daily)" in daily.stdout
    one_day = backfill(f"file://{other_root}", "2024-11-18", "2024-11-18")
    assert one_day.returncode == 0
    assert output_hashes(open_store(seeded)) == output_hashes(open_store(f"file://{other_root}"))


def test_dry_run_writes_nothing_and_shows_selections(seeded: str) -> None:
    store = open_store(seeded)
    before = sorted(i.key for i in store.list(""))
    result = backfill(seeded, "2024-11-14", "2024-11-15", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout and "injuries:" in result.stdout and "snapshot_ts=" in result.stdout
    assert sorted(i.key for i in store.list("")) == before


def test_steps_subset_reads_upstream_from_earlier_runs(seeded: str) -> None:
    assert backfill(seeded, "2024-11-14", "2024-11-14").returncode == 0
    forced = backfill(
        seeded, "2024-11-14", "2024-11-14", "--steps", "sim.run+", "--force", "--profile", "base"
    )
    assert forced.returncode == 0, forced.stdout + forced.stderr
    summary = latest_summary(open_store(seeded))
    ran = {a for a, s in summary["steps"].items() if s["ran"]}
    assert "sim.run" in ran and "minutes.score" not in ran and "promote" in ran
    pointer = slate_pointer(open_store(seeded), "2024-11-14")
    assert "-f" in pointer.run_id and pointer.seq == 2
    missing = backfill(seeded, "2024-11-15", "2024-11-15", "--steps", "sim.run")
    assert missing.returncode == 1
    assert (
        "upstream minutes.score has no success manifest"
        in latest_summary(open_store(seeded))["top_errors"][0]["example_message"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2024-11-15", "--end", "2024-11-14"], "is before --start"),
        (["--start", "2024-11-15", "--steps", "nope.step"], "unknown step 'nope.step'"),
        (["--start", "2024-11-15", "--as-of-mode", "custom"], "needs --as-of-ts"),
        (["--start", "2024-11-15", "--as-of-mode", "sometime"], "--as-of-mode must be"),
        (["--start", "2024-11-15", "--worlds", "-5"], "--worlds must be positive"),
        (["--start", "2024-11-15", "--profile", "wild"], "unknown profile"),
        (["--start", "11/15/2024"], "not an ISO date"),
        (
            ["--start", "2024-11-15", "--as-of-mode", "custom", "--as-of-ts", "2024-11-15T20:00"],
            "naive",
        ),
    ],
)
def test_bad_arguments_exit_nonzero_and_write_nothing(seeded: str, args: list[str], message: str) -> None:
    store = open_store(seeded)
    before = sorted(i.key for i in store.list(""))
    result = run_pipeline_cli("run", "--store", seeded, *args)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert sorted(i.key for i in store.list("")) == before


def test_unreachable_store_exits_nonzero() -> None:
    from tests.servers import free_port

    env = {
        "PIPELINE_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "PIPELINE_S3_ACCESS_KEY": "x",
        "PIPELINE_S3_SECRET_KEY": "y",
        "PIPELINE_S3_RETRIES": "0",
    }
    result = run_pipeline_cli("run", "--start", "2024-11-15", "--store", "s3://nowhere", env=env)
    assert result.returncode == 2 and "cannot reach S3 endpoint" in result.stderr
    missing = run_pipeline_cli("run", "--start", "2024-11-15", "--store", "file:///no/such/store")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
