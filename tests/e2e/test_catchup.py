"""Catch-up: the daily run heals the days it missed, through the same DAG and resume."""

from __future__ import annotations

import shutil

from steps.runtime.pointer import current_run, list_history
from steps.runtime.store import open_store
from tests.helpers import latest_summary, output_hashes, run_pipeline_cli, slate_pointer
from tests.strict import strict_errors
from workflows.argo import build as argo
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph

DAY1, DAY2, DAY3, DAY4 = "2024-11-15", "2024-11-16", "2024-11-17", "2024-11-18"


def daily(store: str, today: str, *extra: str, env: dict[str, str] | None = None):
    return run_pipeline_cli("run", "--store", store, *extra, env={"PIPELINE_TODAY": today, **(env or {})})


def test_outage_is_healed_and_matches_a_plain_backfill(seeded: str, seeded_template, tmp_path) -> None:
    assert daily(seeded, DAY1).returncode == 0
    # Day 4 started before the outage ended: part of it is already done.
    partial = run_pipeline_cli(
        "run",
        "--start",
        DAY4,
        "--store",
        seeded,
        "--steps",
        "ingest.schedule,ingest.roster",
        "--no-downstream",
    )
    assert partial.returncode == 0, partial.stdout + partial.stderr
    healed = daily(seeded, DAY4, "--catch-up-days", "3")
    assert healed.returncode == 0, healed.stdout + healed.stderr
    summary = latest_summary(open_store(seeded))
    assert summary["kind"] == "catch-up"
    assert [(c["game_date"], c["reason"]) for c in summary["caught_up"]] == [
        (DAY2, "no success manifest"),
        (DAY3, "no success manifest"),
    ]
    outcomes = {o["game_date"]: o["status"] for o in summary["partition_outcomes"]}
    assert outcomes == {DAY1: "reused", DAY2: "success", DAY3: "success", DAY4: "success"}
    assert summary["steps"]["ingest.roster"]["reused"] == 2  # day 1 and the done part of day 4
    assert summary["steps"]["ingest.roster"]["ran"] == 2  # days 2 and 3
    # The month's schedule is one partition, as of the range's first slate (day 1's, reused).
    assert summary["steps"]["ingest.schedule"] == {
        **summary["steps"]["ingest.schedule"],
        "reused": 1,
        "ran": 0,
    }

    plain_root = tmp_path / "plain"
    shutil.copytree(seeded_template, plain_root)
    plain = f"file://{plain_root}"
    assert run_pipeline_cli("run", "--start", DAY2, "--end", DAY3, "--store", plain).returncode == 0

    def days_2_and_3(url: str) -> dict:  # type: ignore[type-arg]
        # The window slates each range needed differ (the catch-up also read day 3's tracking).
        return {
            k: v
            for k, v in output_hashes(open_store(url)).items()
            if k[1] in (DAY2, DAY3) and k[0] != "tracking.scrape"
        }

    assert days_2_and_3(seeded) == days_2_and_3(plain)


def test_dry_run_lists_the_days_it_would_heal(seeded: str) -> None:
    assert daily(seeded, DAY3).returncode == 0
    result = daily(seeded, DAY4, "--catch-up-days", "3", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "catch-up: no success manifest" in result.stdout
    assert DAY1 in result.stdout and DAY2 in result.stdout
    assert not list(open_store(seeded).list(f"manifests/ingest.roster/game_date={DAY1}/"))


def test_a_failing_day_is_retried_and_reported_every_time(seeded: str, fast_config: str) -> None:
    env = {"PIPELINE_FAULTS": f"sim.run@{DAY2}=raise"}
    first = daily(seeded, DAY2, "--config", fast_config, env=env)
    assert first.returncode == 1
    for today in (DAY3, DAY4):
        again = daily(seeded, today, "--catch-up-days", "2", "--config", fast_config, env=env)
        assert again.returncode == 1
        summary = latest_summary(open_store(seeded))
        healing = {c["game_date"]: c["reason"] for c in summary["caught_up"]}
        assert healing[DAY2].startswith("failed manifest: sim.run previous attempt failed (InjectedFault)")
        assert [g["dates"] for g in summary["top_errors"]] == [[DAY2]]
    fixed = daily(seeded, DAY4, "--catch-up-days", "2", "--config", fast_config)
    assert fixed.returncode == 0
    assert slate_pointer(open_store(seeded), DAY2) is not None


def test_missing_pointer_is_restored_and_never_moved_back(seeded: str) -> None:
    assert daily(seeded, DAY1).returncode == 0
    store = open_store(seeded)
    scope = slate_pointer(store, DAY1).scope  # type: ignore[union-attr]
    store.delete(f"{scope}current_run.json")  # as if someone deleted it
    healed = daily(seeded, DAY2, "--catch-up-days", "1")
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert {c["game_date"]: c["reason"] for c in latest_summary(store)["caught_up"]} == {
        DAY1: "pointer missing"
    }
    assert current_run(store, scope) is not None

    # A later run of the day with a newer as-of is current; catch-up must not move it back.
    custom = run_pipeline_cli(
        "run",
        "--start",
        DAY1,
        "--store",
        seeded,
        "--as-of-mode",
        "custom",
        "--as-of-ts",
        "2024-11-16T00:30:00Z",
    )
    assert custom.returncode == 0, custom.stdout + custom.stderr
    newer = current_run(store, scope)
    assert newer.run_as_of_ts.isoformat().startswith("2024-11-16T00:30")
    assert daily(seeded, DAY2, "--catch-up-days", "1").returncode == 0
    assert current_run(store, scope) == newer
    assert all(p.run_as_of_ts <= newer.run_as_of_ts for p in list_history(store, scope))


def test_cron_carries_the_window_and_validates() -> None:
    cron = argo.to_dict(argo.cron_workflow(pipeline_graph(), load_config()))
    params = {p["name"]: p["value"] for p in cron["spec"]["workflowSpec"]["arguments"]["parameters"]}
    assert params["catch_up_days"] == str(load_config().catch_up_days)
    plan_step = cron["spec"]["workflowSpec"]["templates"][0]["steps"][0][0]
    assert {"name": "catch_up_days", "value": "{{workflow.parameters.catch_up_days}}"} in plan_step[
        "arguments"
    ]["parameters"]
    assert strict_errors(cron) == []
