"""status and report: one place that says what ran, what failed and why."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from steps.runtime import layout
from steps.runtime.store import open_store
from tests.helpers import latest_summary, run_pipeline_cli

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_status_and_report_show_the_failure(seeded: str, fast_config: str, tmp_path: Path) -> None:
    env = {"PIPELINE_FAULTS": "ownership.score@2024-11-15=raise"}
    run = run_pipeline_cli(
        "run",
        "--start",
        "2024-11-14",
        "--end",
        "2024-11-16",
        "--store",
        seeded,
        "--config",
        fast_config,
        env=env,
    )
    assert run.returncode == 1
    backfill_id = latest_summary(open_store(seeded))["backfill_id"]
    # The range's own report sits beside its summary, as the Argo exit handler stores it.
    stored = open_store(seeded).get_bytes(layout.backfill_key(backfill_id, "report.html")).decode()
    assert "ownership.score: InjectedFault" in stored

    status = run_pipeline_cli("status", "--store", seeded, "--start", "2024-11-14", "--end", "2024-11-16")
    assert status.returncode == 0, status.stderr
    assert "ownership.score: InjectedFault" in status.stdout and "✗" in status.stdout
    assert status.stdout.count("success") >= 2

    page = tmp_path / "report.html"
    made = run_pipeline_cli("report", "--backfill", backfill_id, "--store", seeded, "-o", str(page))
    assert made.returncode == 0, made.stderr
    text = page.read_text()
    assert "ownership.score: InjectedFault" in text and "injected fault in ownership.score" in text
    assert "<script" in text and "cdn." not in text.split("<body>")[1][:2000]  # plotly inlined: works offline

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "no chromium: run the tests through `make test`, which installs Debian's chromium"
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    assert 'class="main-svg"' in dom, "the timeline did not render"
    assert "Steps per partition (Gantt)" in dom
    assert dom.count('class="failure-group"') == 1
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--window-size=1400,1800",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists() and shot.stat().st_size > 20_000


def test_report_and_status_bad_input(seeded: str) -> None:
    missing = run_pipeline_cli("report", "--backfill", "bf-nope", "--store", seeded)
    assert missing.returncode == 2 and "cannot build the report" in missing.stderr
    nothing = run_pipeline_cli("report", "--store", seeded)
    assert nothing.returncode == 2 and "--backfill" in nothing.stderr
    empty = run_pipeline_cli("status", "--store", seeded)
    assert empty.returncode == 0 and "No runs" in empty.stdout
