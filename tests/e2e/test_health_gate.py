"""End to end: a run whose health fails is never promoted, and the current pointer stays put."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from steps.runtime import layout
from steps.runtime.layout import pointer_key
from steps.runtime.manifest import Manifest, list_manifests, read_manifest
from steps.runtime.pointer import Pointer, list_history
from steps.runtime.store import open_store
from tests.helpers import latest_summary, run_pipeline_cli, run_steps_cli, slate_pointers

DAY = "2024-11-17"  # two draft groups: the whole slate and the main slate
# DraftKings' own team codes: a salaries feed that switches to them leaves the projections
# without those teams' players (their games are not on the schedule under these codes).
DK_CODES = {"GSW": "GS", "NYK": "NY", "SAS": "SA", "NOP": "NO", "PHX": "PHO", "UTA": "UTAH", "WAS": "WSH"}


@dataclass(frozen=True)
class Gated:
    url: str
    before: dict[str, bytes]  # draft group -> its current_run.json, after the first run
    pointers: list[Pointer]
    failed_run: str  # the later run whose health failed
    result_code: int
    result_out: str


def pointer_bytes(url: str) -> dict[str, bytes]:
    store = open_store(url)
    return {p.draft_group_id or "": store.get_bytes(pointer_key(p.scope)) for p in slate_pointers(store, DAY)}


def health_manifests(url: str, run_id: str) -> list[Manifest]:
    store = open_store(url)
    found = list_manifests(store, layout.manifest_date_prefix("health.checks", date.fromisoformat(DAY)))
    latest = {m.key.segments(): m for m in found if m.partition.run_id == run_id}  # one per group
    return sorted(latest.values(), key=lambda m: m.partition.draft_group_id or "")


@pytest.fixture(scope="module")
def gated(seeded_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Gated:
    """Promote DAY's pre-tip run; then DK re-lands the salaries with its own team codes just
    before lock, and DAY's lock run is made from them."""
    root = tmp_path_factory.mktemp("gate") / "store"
    shutil.copytree(seeded_template, root)
    url = f"file://{root}"
    first = run_pipeline_cli("run", "--start", DAY, "--end", DAY, "--store", url)
    assert first.returncode == 0, first.stdout + first.stderr
    store = open_store(url)
    pointers = slate_pointers(store, DAY)
    assert [p.seq for p in pointers] == [1, 1]
    before = pointer_bytes(url)

    day = date.fromisoformat(DAY)
    [snapshot] = [i.key for i in store.list(layout.landing_date_prefix("salaries", day))]
    salaries = store.get_parquet(snapshot)
    relabelled = salaries.assign(team=salaries["team"].replace(DK_CODES))
    assert (relabelled["team"] != salaries["team"]).mean() > 0.15  # enough to break coverage
    landed_at = pointers[0].run_as_of_ts + timedelta(minutes=10)  # after pre-tip, before lock
    store.put_parquet(layout.landing_snapshot_key("salaries", day, landed_at), relabelled)

    later = run_pipeline_cli("run", "--start", DAY, "--end", DAY, "--as-of-mode", "lock", "--store", url)
    summary = latest_summary(store)
    [outcome] = summary["partition_outcomes"]
    assert outcome["run_id"] != pointers[0].run_id
    return Gated(url, before, pointers, outcome["run_id"], later.returncode, later.stdout + later.stderr)


def test_failed_health_is_reported_and_moves_no_pointer(gated: Gated) -> None:
    store = open_store(gated.url)
    manifests = health_manifests(gated.url, gated.failed_run)
    assert [m.partition.draft_group_id for m in manifests] == [p.draft_group_id for p in gated.pointers]
    for manifest in manifests:
        assert manifest.status == "failed" and manifest.error is not None
        assert manifest.error.type == "CheckFailed" and not manifest.error.retryable
        failed = [c for c in manifest.checks if not c.passed and c.severity == "critical"]
        assert [c.name for c in failed] == ["coverage_critical"], manifest.checks
        assert "coverage_critical" in manifest.error.message
        assert manifest.metrics["coverage"] < 0.9
        # The schema-enforced checks are gone; the ones that can fail are all there.
        names = {c.name for c in manifest.checks}
        assert {"no_nulls", "minutes_range"}.isdisjoint(names)
        assert {"salary_agrees", "minutes_mean_agrees", "fp_mean_agrees", "fp_drift_critical"} <= names
        # Not promoted: promote did not even run for this run.
        assert read_manifest(store, "promote", manifest.key) is None

    # The pointers are untouched: same bytes, same run and version, no new history.
    assert pointer_bytes(gated.url) == gated.before
    for old, now in zip(gated.pointers, slate_pointers(store, DAY), strict=True):
        assert (now.run_id, now.seq) == (old.run_id, old.seq)
        assert [p.seq for p in list_history(store, now.scope)] == [1]

    # The run reports it: exit 1, the partition failed at health.checks, the error grouped.
    assert gated.result_code == 1, gated.result_out
    summary = latest_summary(store)
    assert summary["partitions"]["failed"] == 1 and summary["partitions"]["succeeded"] == 0
    [outcome] = summary["partition_outcomes"]
    assert outcome["status"] == "failed"
    assert {s.split(" / ")[0] for s in outcome["failed_steps"]} == {"health.checks"}
    assert {s.split(" / ")[0] for s in outcome["blocked_steps"]} >= {"promote"}
    assert any("coverage_critical" in g["example_message"] for g in summary["top_errors"])


def test_promote_by_hand_refuses_the_failed_health_with_exit_2(gated: Gated) -> None:
    store = open_store(gated.url)
    for health in health_manifests(gated.url, gated.failed_run):
        part = health.partition
        result = run_steps_cli(
            "promote",
            "--game-date",
            DAY,
            "--draft-group-id",
            str(part.draft_group_id),
            "--run-id",
            str(part.run_id),
            "--as-of",
            part.as_of_iso(),
            "--profile",
            str(part.profile),
            "--worlds",
            str(part.worlds),
            "--store",
            gated.url,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert (
            "PointerRefused" in result.stderr and "failed critical checks coverage_critical" in result.stderr
        )
        promoted = read_manifest(store, "promote", health.key)
        assert promoted is not None and promoted.status == "failed"
        [judged] = [i for i in promoted.inputs if i.name == "health.checks.data"]
        assert judged.run_id == part.run_id  # its own run's health, recorded as its input
    assert pointer_bytes(gated.url) == gated.before


def test_a_live_run_of_the_next_slate_compares_with_the_promoted_one(gated: Gated, tmp_path: Path) -> None:
    """The drift baseline is the earlier slate promoted before the run's as-of: a run as of
    now sees DAY's promoted table (a replay as of 2024 would see none)."""
    root = tmp_path / "store"
    shutil.copytree(gated.url.removeprefix("file://"), root)
    url = f"file://{root}"
    as_of = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    nxt = "2024-11-18"
    result = run_pipeline_cli(
        "run", "--start", nxt, "--end", nxt, "--as-of-mode", "custom", "--as-of-ts", as_of, "--store", url
    )
    assert result.returncode == 0, result.stdout + result.stderr
    store = open_store(url)
    [pointer] = slate_pointers(store, nxt)
    health = read_manifest(store, "health.checks", pointer.key)
    assert health is not None and health.status == "success"
    checks = {c.name: c for c in health.checks}
    baseline = max(gated.pointers, key=lambda p: (p.run_as_of_ts, p.draft_group_id or ""))
    assert checks["fp_drift_critical"].passed and checks["fp_drift_warn"].passed
    assert f"against {DAY} / draft group {baseline.draft_group_id} run {baseline.run_id}" in (
        checks["fp_drift_critical"].detail
    )
    assert health.metrics["fp_drift_critical"] < 0.2  # a normal next slate
    [recorded] = [i for i in health.inputs if i.name == "finalize.unified.baseline"]
    assert recorded.run_id == baseline.run_id
