"""Each health check fails and passes on small frames; promote refuses an unhealthy run."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from steps.pipeline import health
from steps.pipeline.health import (
    DRIFT_CRITICAL,
    DRIFT_WARN,
    Baseline,
    CheckResult,
    agreement_checks,
    coverage_checks,
    drift_checks,
    previous_promoted,
    sanity_checks,
)
from steps.registry import get_step
from steps.runtime import layout
from steps.runtime.layout import history_key, pointer_key
from steps.runtime.manifest import (
    CheckRecord,
    EnvironmentRecord,
    Manifest,
    OutputRecord,
    Timing,
    read_manifest,
    write_manifest,
)
from steps.runtime.partition import Partition, PartitionKey
from steps.runtime.pointer import Pointer, current_run
from steps.runtime.step import execute
from steps.runtime.store import Store, dumps_json, open_store

PLAYERS = [f"p{i:02d}" for i in range(20)]


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check: r for r in results}


def unified(fp: list[float] | None = None, **columns: list) -> pd.DataFrame:
    n = len(PLAYERS)
    frame = pd.DataFrame(
        {
            "player_id": PLAYERS,
            "team": ["AAA"] * 10 + ["BBB"] * 10,
            "salary": [5000 + 100 * i for i in range(n)],
            "minutes_mean": [24.0] * n,  # 10 x 24 = 240 a team
            "fp_mean": fp if fp is not None else [10.0 + i for i in range(n)],
            "is_out": [False] * n,
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


# ---- coverage ---------------------------------------------------------------------------
def coverage(projected: int) -> dict[str, CheckResult]:
    fp = [20.0] * projected + [0.0] * (len(PLAYERS) - projected)
    roster = pd.DataFrame({"player_id": [*PLAYERS, "benched"], "active": [True] * 20 + [False]})
    injuries = pd.DataFrame({"player_id": ["hurt"], "status": ["OUT"]})
    salaries = pd.DataFrame({"player_id": [*PLAYERS, "benched", "hurt"]})  # neither is expected
    return by_name(coverage_checks(unified(fp), roster, injuries, salaries))


def test_coverage_passes_at_95_percent() -> None:
    found = coverage(19)
    assert found["coverage_critical"].passed and found["coverage_warn"].passed
    assert found["coverage_critical"].value == pytest.approx(0.95)


def test_coverage_warns_below_95_and_fails_below_90_percent() -> None:
    warned = coverage(18)
    assert warned["coverage_critical"].passed and not warned["coverage_warn"].passed
    failed = coverage(17)
    assert not failed["coverage_critical"].passed and failed["coverage_critical"].severity == "critical"
    assert "17/20 expected active players projected" in failed["coverage_critical"].detail
    assert "missing e.g. p17, p18, p19" in failed["coverage_critical"].detail


# ---- agreement with upstreams -----------------------------------------------------------
def upstreams(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (
        frame[["player_id", "salary"]].copy(),
        frame[["player_id", "minutes_mean"]].copy(),
        frame[["player_id", "fp_mean"]].copy(),
    )


def test_agreement_passes_when_unified_copies_its_upstreams() -> None:
    frame = unified()
    salaries, minutes, sim = upstreams(frame)
    minutes["minutes_mean"] += 1e-9  # float noise is not a disagreement
    found = by_name(agreement_checks(frame, salaries, minutes, sim))
    assert set(found) == {"salary_agrees", "minutes_mean_agrees", "fp_mean_agrees"}
    assert all(r.passed and r.severity == "critical" and r.value == 0 for r in found.values())


@pytest.mark.parametrize("check", ["salary_agrees", "minutes_mean_agrees", "fp_mean_agrees"])
def test_agreement_fails_on_a_changed_value(check: str) -> None:
    frame = unified()
    salaries, minutes, sim = upstreams(frame)
    upstream, column = {
        "salary_agrees": (salaries, "salary"),
        "minutes_mean_agrees": (minutes, "minutes_mean"),
        "fp_mean_agrees": (sim, "fp_mean"),
    }[check]
    upstream.loc[upstream["player_id"] == "p03", column] += 1
    found = by_name(agreement_checks(frame, salaries, minutes, sim))
    assert not found[check].passed and found[check].value == 1
    assert "1/20 unified players disagree" in found[check].detail and "p03" in found[check].detail
    assert all(r.passed for name, r in found.items() if name != check)


def test_agreement_fails_for_a_player_missing_upstream() -> None:
    frame = unified()
    salaries, minutes, sim = upstreams(frame)
    found = by_name(agreement_checks(frame, salaries[salaries["player_id"] != "p07"], minutes, sim))
    assert not found["salary_agrees"].passed and "p07" in found["salary_agrees"].detail


# ---- drift ------------------------------------------------------------------------------
def pointer(day: str, group: str, seq: int, promoted_at: str, run_id: str = "r1") -> Pointer:
    slate = date.fromisoformat(day)
    key = PartitionKey(game_date=slate, draft_group_id=group, run_id=run_id)
    return Pointer(
        scope=layout.pointer_scope("finalize.unified", key),
        asset="finalize.unified",
        game_date=slate,
        draft_group_id=group,
        run_id=run_id,
        manifest_path=layout.manifest_run_prefix("finalize.unified", key),
        run_as_of_ts=datetime.fromisoformat(f"{day}T23:00:00+00:00"),
        seq=seq,
        promoted_at=datetime.fromisoformat(promoted_at),
        promoted_by="test",
        reason="test",
    )


def drifted(scale: float) -> dict[str, CheckResult]:
    base = unified()
    now = unified([v * scale for v in base["fp_mean"]])
    return by_name(
        drift_checks(now, Baseline(pointer("2024-11-17", "g", 1, "2024-11-17T23:30:00+00:00"), base))
    )


def test_drift_without_a_baseline_passes_and_says_so() -> None:
    found = by_name(drift_checks(unified(), None))
    assert found["fp_drift_critical"].passed and found["fp_drift_warn"].passed
    assert "no baseline" in found["fp_drift_critical"].detail


def test_drift_within_normal_variation_passes() -> None:
    found = drifted(1.05)
    assert found["fp_drift_critical"].passed and found["fp_drift_warn"].passed
    assert found["fp_drift_critical"].value == pytest.approx(0.05)
    assert "2024-11-17 / draft group g run r1" in found["fp_drift_critical"].detail


def test_drift_warns_then_fails() -> None:
    warned = drifted(1 + (DRIFT_WARN + DRIFT_CRITICAL) / 2)
    assert warned["fp_drift_critical"].passed and not warned["fp_drift_warn"].passed
    failed = drifted(1 - DRIFT_CRITICAL - 0.1)
    assert not failed["fp_drift_critical"].passed and failed["fp_drift_critical"].severity == "critical"


def test_drift_ignores_players_ruled_out_and_fails_when_nobody_is_projected() -> None:
    base = Baseline(pointer("2024-11-17", "g", 1, "2024-11-17T23:30:00+00:00"), unified())
    out = unified(is_out=[True] * 5 + [False] * 15)
    out.loc[out["is_out"], "fp_mean"] = 0.0
    assert by_name(drift_checks(out, base))["fp_drift_critical"].value < DRIFT_WARN
    nobody = unified([0.0] * len(PLAYERS))
    assert not by_name(drift_checks(nobody, base))["fp_drift_critical"].passed


# ---- ranges -----------------------------------------------------------------------------
def test_ranges_pass_and_fail() -> None:
    found = by_name(sanity_checks(unified()))
    assert found["fp_range"].passed and found["team_minutes_240"].passed
    broken = by_name(sanity_checks(unified(minutes_mean=[24.0] * 10 + [20.0] * 10)))
    assert not broken["team_minutes_240"].passed and broken["team_minutes_240"].severity == "warn"
    assert "BBB" in broken["team_minutes_240"].detail
    fp = [10.0] * 19 + [130.0]
    assert not by_name(sanity_checks(unified(fp)))["fp_range"].passed


# ---- the baseline: the previous promoted slate as it stood at the as-of -------------------
@pytest.fixture
def file_store(tmp_path: Path) -> Store:
    return open_store(f"file://{tmp_path / 'store'}", create=True)


def land_pointer(store: Store, p: Pointer, *, current: bool = True) -> None:
    body = dumps_json(p.model_dump(mode="json"))
    store.put_bytes(history_key(p.scope, p.seq), body)
    if current:
        store.put_bytes(pointer_key(p.scope), body)


def test_previous_promoted_picks_the_latest_earlier_slate_as_of(file_store: Store) -> None:
    as_of = datetime(2024, 11, 18, 23, 0, tzinfo=UTC)
    day = date(2024, 11, 18)
    assert previous_promoted(file_store, day, as_of) is None
    land_pointer(file_store, pointer("2024-11-15", "dg-15", 1, "2024-11-15T23:40:00+00:00"))
    land_pointer(file_store, pointer("2024-11-16", "dg-16", 1, "2024-11-16T23:40:00+00:00"), current=False)
    land_pointer(file_store, pointer("2024-11-16", "dg-16", 2, "2024-11-19T10:00:00+00:00", run_id="r2"))
    land_pointer(file_store, pointer("2024-11-18", "dg-18", 1, "2024-11-18T20:00:00+00:00"))  # same slate
    land_pointer(file_store, pointer("2024-06-10", "dg-old", 1, "2024-06-10T23:40:00+00:00"))  # last season
    found = previous_promoted(file_store, day, as_of)
    # 11-16's version 2 was promoted after the as-of: version 1 was current then.
    assert found is not None and (found.game_date, found.seq, found.run_id) == (date(2024, 11, 16), 1, "r1")
    before = previous_promoted(file_store, day, datetime(2024, 11, 16, 0, 0, tzinfo=UTC))
    assert before is not None and before.game_date == date(2024, 11, 15)
    assert previous_promoted(file_store, date(2024, 11, 1), as_of) is None  # only 06-10: another season


# ---- promote reads its own partition's health manifest ----------------------------------
AS_OF = "2024-11-18T23:00:00Z"


def partition(shape: str, run_id: str = "r1", group: str | None = "dg-1") -> Partition:
    return Partition.build(
        shape=shape, game_date="2024-11-18", run_as_of_ts=AS_OF, run_id=run_id, draft_group_id=group
    )


def land_manifest(
    store: Store,
    asset: str,
    part: Partition,
    *,
    status: str = "success",
    checks: tuple[CheckRecord, ...] = (),
) -> Manifest:
    now = datetime.now(UTC)
    manifest = Manifest(
        asset=asset,
        partition=part,
        status=status,  # type: ignore[arg-type]
        timing=Timing(started_at=now, finished_at=now, duration_s=0.0),
        environment=EnvironmentRecord(code_version="test", hostname="test", python="3"),
        correlation_id="test",
        outputs=[
            OutputRecord(
                name="data",
                path=f"{layout.run_prefix(asset, part.key)}data.parquet",
                row_count=1,
                content_hash="sha256:0",
            )
        ],
        checks=list(checks),
    )
    write_manifest(store, manifest)
    return manifest


def run_promote(store: Store, run_id: str = "r1") -> Manifest:
    return execute(get_step("promote"), partition("draft_group", run_id), store, correlation_id="test")


def current_run_id(store: Store) -> str | None:
    found = current_run(store, layout.pointer_scope("finalize.unified", partition("draft_group").key))
    return found.run_id if found else None


def refusal(manifest: Manifest) -> str:
    """The message of a promote that refused: deterministic, so the CLI exits 2."""
    assert manifest.status == "failed" and manifest.error is not None
    assert manifest.error.type == "PointerRefused" and not manifest.error.retryable
    return manifest.error.message


def test_promote_refuses_without_its_own_health_manifest(file_store: Store) -> None:
    # Another run of the same partition passed health and is current: that does not count.
    land_manifest(file_store, "health.checks", partition("draft_group", "r0"))
    land_manifest(file_store, "finalize.unified", partition("draft_group", "r0"))
    land_pointer(file_store, pointer("2024-11-18", "dg-1", 1, "2024-11-18T23:30:00+00:00", run_id="r0"))
    land_manifest(file_store, "finalize.unified", partition("draft_group"))
    message = refusal(run_promote(file_store))
    assert "health.checks has no manifest for 2024-11-18 / draft group dg-1 run r1" in message
    assert current_run_id(file_store) == "r0"


@pytest.mark.parametrize("status", ["failed", "success"])
def test_promote_refuses_a_failed_critical_check_and_names_it(file_store: Store, status: str) -> None:
    checks = [
        CheckRecord(name="coverage_critical", passed=False, detail="17/20", severity="critical"),
        CheckRecord(name="fp_drift_warn", passed=False, detail="drift", severity="warn"),
        CheckRecord(name="salary_agrees", passed=True, severity="critical"),
    ]
    health_manifest = land_manifest(
        file_store, "health.checks", partition("draft_group"), status=status, checks=tuple(checks)
    )
    land_manifest(file_store, "finalize.unified", partition("draft_group"))
    manifest = run_promote(file_store)
    message = refusal(manifest)
    assert "failed critical checks coverage_critical)" in message and "fp_drift_warn" not in message
    [judged] = [i for i in manifest.inputs if i.name == "health.checks.data"]
    assert judged.run_id == "r1" and judged.path == health_manifest.outputs[0].path
    assert current_run_id(file_store) is None
    assert read_manifest(file_store, "promote", partition("draft_group").key) == manifest


def test_promote_moves_the_pointer_when_only_warnings_failed(file_store: Store) -> None:
    warn = CheckRecord(name="fp_drift_warn", passed=False, detail="drift", severity="warn")
    land_manifest(file_store, "health.checks", partition("draft_group"), checks=(warn,))
    land_manifest(file_store, "finalize.unified", partition("draft_group"))
    land_manifest(file_store, "minutes.train", partition("season_to_date", group=None))
    manifest = run_promote(file_store)
    assert manifest.status == "success", manifest.error
    assert current_run_id(file_store) == "r1"
    assert [i.name for i in manifest.inputs] == ["health.checks.data"]


def test_health_is_registered_from_its_own_module() -> None:
    spec = get_step("health.checks")
    assert spec.run is health.run_health
    assert {"minutes.score", "sim.run", "dk.salaries"} <= set(spec.consumed_assets)
