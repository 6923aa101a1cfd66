"""Try hard to break the promises: kills at random points, a MinIO restart, a watching reader."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from steps.runtime.manifest import read_manifest
from steps.runtime.pointer import Pointer
from steps.runtime.store import Store, open_store
from synthetic.seed import seed_history
from tests.helpers import latest_summary, output_hashes, run_pipeline_cli
from tests.servers import MinioServer, free_port

RANGE = ("2024-11-15", "2024-11-16")
CHAOS_RUNS = 10


def _runner(store: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    import os

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workflows.cli",
            "run",
            "--start",
            RANGE[0],
            "--end",
            RANGE[1],
            "--store",
            store,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, **(env or {})),
    )


def test_chaos_sigkill_at_random_points_always_converges(seeded_template: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(seeded_template, reference)
    assert (
        run_pipeline_cli(
            "run", "--start", RANGE[0], "--end", RANGE[1], "--store", f"file://{reference}"
        ).returncode
        == 0
    )
    expected = output_hashes(open_store(f"file://{reference}"))
    written = len(list(open_store(f"file://{reference}").list("manifests/")))
    rng = random.Random(20241115)
    kills_after = []
    for i in range(CHAOS_RUNS):
        root = tmp_path / f"chaos-{i}"
        shutil.copytree(seeded_template, root)
        url = f"file://{root}"
        proc = _runner(url)
        # Kill at a point of progress, not of time: a loaded machine still spreads the kills.
        target = rng.randint(0, int(written * 0.9))
        began = time.monotonic()
        while proc.poll() is None and len(list(open_store(url).list("manifests/"))) < target:
            time.sleep(0.05)
        delay = time.monotonic() - began
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills_after.append(len(list(open_store(url).list("manifests/"))))
        time.sleep(0.3)
        resumed = run_pipeline_cli("run", "--start", RANGE[0], "--end", RANGE[1], "--store", url)
        assert resumed.returncode == 0, (
            f"run {i} (killed after {delay:.1f}s): {resumed.stdout}{resumed.stderr}"
        )
        assert output_hashes(open_store(url)) == expected, f"run {i} differs after a kill at {delay:.1f}s"
        shutil.rmtree(root)
    assert len(set(kills_after)) > 3, f"kills should land at different points: {kills_after}"


def test_minio_restart_mid_backfill_completes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = MinioServer(data_dir=tmp_path / "data", port=free_port()).start()
    try:
        env = server.env()
        import os

        for name, value in env.items():
            monkeypatch.setenv(name, value)
        url = "s3://restart"
        seed_history(
            open_store(url, create=True),
            2024,
            start=__import__("datetime").date(2024, 11, 1),
            end=__import__("datetime").date(2024, 11, 16),
        )
        config = tmp_path / "pipeline.yaml"
        config.write_text(
            "runner:\n  max_parallel: 2\n  retries: {limit: 4, backoff_seconds: 2, factor: 2, max_backoff_seconds: 8}\n"
            "limits: {source.schedule: 2, source.injuries: 1, source.odds: 1, source.lineups: 1, source.roster: 2, "
            "source.salaries: 1, source.boxscores: 2, source.tracking: 2, stage.train: 1, stage.sim: 1, stage.promote: 1}\n"
        )
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workflows.cli",
                "run",
                "--start",
                RANGE[0],
                "--end",
                RANGE[1],
                "--store",
                url,
                "--config",
                str(config),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # sim.run stalls 3 s after writing its outputs, before its manifest: the restart below
            # lands in that stall, so the manifest write meets the outage whatever else is running
            # (the runner's own store calls ride an outage out and cost no step a retry).
            env=dict(os.environ, **env, PIPELINE_FAULTS="sim.run@*=sleep:3"),
        )
        store = open_store(url)
        deadline = time.monotonic() + 120
        while not any(True for _ in store.list("runs/sim.run/")) and time.monotonic() < deadline:
            time.sleep(0.05)
        server.stop()
        # Down past the stall and the client's own retries (about 1.5 s); then back, same port and data.
        time.sleep(6.0)
        server.start()
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out.decode()[-3000:]
        summary = latest_summary(open_store(url))
        assert summary["partitions"]["succeeded"] == 2
        retried = sum(s["attempts"] - s["ran"] for s in summary["steps"].values())
        assert retried >= 1, "the restart should have cost at least one retry"
    finally:
        server.stop()


def _check_pointers(store: Store) -> tuple[int, list[str]]:
    checked, problems = 0, []
    for info in store.list("current/"):
        if not info.key.endswith("current_run.json"):
            continue
        pointer = Pointer.model_validate_json(store.get_bytes(info.key))
        manifest = read_manifest(store, pointer.asset, pointer.key)
        if manifest is None or manifest.status != "success":
            problems.append(f"{info.key} names {pointer.run_id} without a success manifest")
            continue
        for out in manifest.outputs:
            if not store.exists(out.path):
                problems.append(f"{info.key}: output {out.path} missing")
        checked += 1
    return checked, problems


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_reader_beside_a_backfill_never_sees_a_bad_pointer(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("seeded" if backend == "file" else "seeded_s3")
    store = open_store(url)
    stop = threading.Event()
    seen: list[int] = []
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            checked, found = _check_pointers(store)
            seen.append(checked)
            problems.extend(found)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = run_pipeline_cli("run", "--start", "2024-11-13", "--end", "2024-11-16", "--store", url)
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert problems == []
    assert len(seen) > 5 and max(seen) >= 4 and min(seen) == 0  # it watched from empty to full
