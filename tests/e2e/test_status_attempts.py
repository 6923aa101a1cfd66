"""`pipeline status` shows a date's latest attempt beside its current pointer, so a failed
rerun of a promoted date stands out (issue #16)."""

from __future__ import annotations

from steps.runtime.store import open_store
from tests.helpers import latest_summary, run_pipeline_cli, slate_pointer

DAY = "2024-11-14"


def test_status_flags_a_failed_rerun_of_a_promoted_date(seeded: str, fast_config: str) -> None:
    store = open_store(seeded)
    first = run_pipeline_cli("run", "--start", DAY, "--store", seeded, "--config", fast_config)
    assert first.returncode == 0, first.stderr
    pointer = slate_pointer(store, DAY)
    assert pointer is not None and pointer.attempt_id

    clean = run_pipeline_cli("status", "--store", seeded, "--start", DAY, "--end", DAY)
    assert clean.returncode == 0, clean.stderr
    # nothing newer than the pointer's run: no latest-run line, no flag
    row = next(line for line in clean.stdout.splitlines() if line.startswith(f"│ {DAY}"))
    assert "latest run" not in clean.stdout and "✗ failed" not in row and "newer run" not in row

    rerun = run_pipeline_cli(
        "run",
        "--start",
        DAY,
        "--force",
        "--store",
        seeded,
        "--config",
        fast_config,
        env={"PIPELINE_FAULTS": f"minutes.score@{DAY}=raise"},
    )
    assert rerun.returncode == 1
    failed_run = next(
        o["run_id"] for o in latest_summary(store)["partition_outcomes"] if o["game_date"] == DAY
    )
    assert failed_run != pointer.run_id
    after = slate_pointer(store, DAY)
    assert after is not None and after.run_id == pointer.run_id  # the failed rerun was not promoted

    status = run_pipeline_cli("status", "--store", seeded, "--start", DAY, "--end", DAY)
    assert status.returncode == 0, status.stderr
    out = status.stdout
    flag = next(line for line in out.splitlines() if line.startswith(f"! {DAY}"))
    assert f"latest run {failed_run}" in flag
    assert f"still names run {pointer.run_id} (attempt {pointer.attempt_id})" in flag
    why = out.split(flag, 1)[1]
    assert f"minutes.score: InjectedFault: injected fault in minutes.score for {DAY}" in why
    # the row itself still shows the promoted run, whole
    row = next(line for line in out.splitlines() if line.startswith(f"│ {DAY}"))
    assert pointer.run_id in row and "success" in row and "v1 (this run)" in row and "✗ failed" in row
