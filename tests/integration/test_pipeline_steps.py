"""The pipeline's steps on seeded history: contracts, leakage, determinism, gaps, accuracy."""

from __future__ import annotations

import filecmp
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from steps.pipeline.script import script_step
from steps.runtime import layout
from steps.runtime.manifest import read_manifest
from steps.runtime.partition import Partition
from steps.runtime.step import execute
from steps.runtime.store import open_store
from synthetic.seed import seed_history
from tests.helpers import latest_summary, output_hashes, run_pipeline_cli, run_steps_cli, slate_pointer

DAY = "2024-11-18"
AS_OF = "2024-11-18T23:30:00Z"
INGEST = [
    "ingest.schedule",
    "ingest.injuries",
    "ingest.odds",
    "ingest.lineups",
    "ingest.roster",
    "dk.salaries",
]


def run_step(store: str, asset: str, run_id: str, as_of: str = AS_OF, day: str = DAY):
    where = ["--month", day[:7]] if asset == "ingest.schedule" else ["--game-date", day]  # month-shaped
    return run_steps_cli(asset, *where, "--run-id", run_id, "--as-of", as_of, "--store", store)


def test_seed_history_is_byte_identical_and_range_independent(tmp_path: Path, seeded_template: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    seed_history(
        open_store(f"file://{a}", create=True),
        2024,
        seed=7,
        start=date(2024, 11, 20),
        end=date(2024, 11, 21),
    )
    seed_history(
        open_store(f"file://{b}", create=True),
        2024,
        seed=7,
        start=date(2024, 11, 20),
        end=date(2024, 11, 21),
    )
    files = sorted(p.relative_to(a) for p in (a / "landing").rglob("*") if p.is_file())
    assert len(files) > 20
    for rel in files:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel
        assert filecmp.cmp(a / rel, seeded_template / rel, shallow=False), rel  # same as the 3-week seed
    other = tmp_path / "c"
    seed_history(
        open_store(f"file://{other}", create=True),
        2024,
        seed=8,
        start=date(2024, 11, 20),
        end=date(2024, 11, 20),
    )
    rel = next(r for r in files if "boxscores" in str(r) and "2024-11-20" in str(r))
    assert not filecmp.cmp(a / rel, other / rel, shallow=False)


def test_landing_contract_break_fails_ingest_and_promotes_nothing(seeded: str) -> None:
    store = open_store(seeded)
    [snap] = [i.key for i in store.list(layout.landing_date_prefix("roster", date(2024, 11, 18)))]
    roster = store.get_parquet(snap)
    roster.loc[1, "player_id"] = roster.loc[0, "player_id"]  # a scraper bug: duplicate player
    store.put_parquet(snap, roster)
    result = run_pipeline_cli("run", "--start", DAY, "--store", seeded)
    assert result.returncode == 1
    manifest = read_manifest(
        store,
        "ingest.roster",
        Partition.build(game_date=DAY, run_as_of_ts=AS_OF, run_id="20241118T233000Z-base-w1000").key,
    )
    assert manifest.status == "failed" and manifest.error.type == "ContractBroken"
    assert "contract broken at ingest.roster input roster [landing.roster]" in manifest.error.message
    assert "player_id" in manifest.error.message
    assert slate_pointer(store, DAY) is None
    assert "ContractBroken" in latest_summary(store)["top_errors"][0]["signature"]


def _land(store, source: str, day: date, at: datetime, frame: pd.DataFrame) -> None:
    store.put_parquet(layout.landing_snapshot_key(source, day, at), frame)


def test_no_leakage_from_data_stamped_after_as_of(seeded: str) -> None:
    for asset in [*INGEST, "minutes.features"]:
        assert run_step(seeded, asset, "before").returncode == 0, asset
    store = open_store(seeded)
    day = date(2024, 11, 18)
    later = datetime(2024, 11, 18, 23, 45, tzinfo=UTC)  # 15 minutes after the as-of
    roster = store.get_parquet(next(i.key for i in store.list(layout.landing_date_prefix("roster", day))))
    everyone_out = pd.DataFrame(
        {
            "player_id": roster["player_id"],
            "team": roster["team"],
            "status": "OUT",
            "reported_ts": pd.Timestamp(later),
        }
    )
    everyone_out["reported_ts"] = everyone_out["reported_ts"].astype("datetime64[ns, UTC]")
    _land(store, "injuries", day, later, everyone_out)
    odds_key = next(i.key for i in store.list(layout.landing_date_prefix("odds", day)))
    _land(store, "odds", day, later, store.get_parquet(odds_key).assign(spread_home=20.0, total=260.0))
    # The slate's own box scores (they land the next morning) and a doctored earlier box
    # score re-landed late must not be read either.
    box_key = next(i.key for i in store.list(layout.landing_date_prefix("boxscores", date(2024, 11, 17))))
    _land(
        store,
        "boxscores",
        date(2024, 11, 17),
        later,
        store.get_parquet(box_key).assign(minutes=48.0),
    )
    for asset in [*INGEST, "minutes.features"]:
        assert run_step(seeded, asset, "after").returncode == 0, asset
    hashes = output_hashes(store)
    for asset in ["ingest.injuries", "ingest.odds", "minutes.features"]:
        assert hashes[(asset, DAY, "before", "data")] == hashes[(asset, DAY, "after", "data")], asset
    # ...while a run as of after the new snapshots does see them.
    assert run_step(seeded, "ingest.injuries", "later", as_of="2024-11-18T23:50:00Z").returncode == 0
    assert (
        output_hashes(store)[("ingest.injuries", DAY, "later", "data")]
        != hashes[("ingest.injuries", DAY, "before", "data")]
    )


def test_determinism_across_runs_and_stores(seeded: str, seeded_s3: str, tmp_path, seeded_template) -> None:
    assert run_pipeline_cli("run", "--start", DAY, "--store", seeded).returncode == 0
    s3 = run_pipeline_cli("run", "--start", DAY, "--store", seeded_s3)
    assert s3.returncode == 0, s3.stdout + s3.stderr
    local_hashes = output_hashes(open_store(seeded))
    assert len(local_hashes) >= 18
    assert local_hashes == output_hashes(open_store(seeded_s3))
    again = run_pipeline_cli("run", "--start", DAY, "--store", seeded, "--no-resume")
    assert again.returncode == 0
    assert output_hashes(open_store(seeded)) == local_hashes


def test_odds_gap_proceeds_and_is_recorded(seeded: str) -> None:
    result = run_pipeline_cli("run", "--start", "2024-11-15", "--store", seeded)
    assert result.returncode == 0, result.stdout
    store = open_store(seeded)
    key = Partition.build(
        game_date="2024-11-15",
        run_as_of_ts="2024-11-15T23:30:00Z",
        run_id="20241115T233000Z-base-w1000",
    ).key
    odds = read_manifest(store, "ingest.odds", key)
    assert odds.status == "success"
    [gap] = odds.gaps
    assert gap.source == "odds" and gap.policy == "proceed" and "no odds snapshot" in gap.detail
    assert read_manifest(store, "minutes.features", key).metrics["odds_missing_share"] == 1.0
    assert any(g["detail"] == gap.detail for g in latest_summary(store)["gaps"])


def test_injuries_gap_fails_fast_with_remediation(seeded: str) -> None:
    early = "2024-11-18T14:00:00Z"  # 09:00 ET: the first injury report lands at 10:00 ET
    result = run_step(seeded, "ingest.injuries", "early", as_of=early)
    assert result.returncode == 2  # deterministic: a retry would find the same gap
    manifest = read_manifest(
        open_store(seeded),
        "ingest.injuries",
        Partition.build(game_date=DAY, run_as_of_ts=early, run_id="early").key,
    )
    assert manifest.status == "failed" and manifest.error.type == "MissingInput"
    assert "no injuries snapshot for 2024-11-18 at or before 2024-11-18T14:00:00Z" in manifest.error.message
    assert "Remediation: the injury report" in manifest.error.message


def test_fortnight_beats_naive_baseline(seeded: str) -> None:
    result = run_pipeline_cli(
        "run",
        "--start",
        "2024-11-08",
        "--end",
        "2024-11-21",
        "--store",
        seeded,
        "--max-parallel",
        "2",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    accuracy = latest_summary(open_store(seeded))["accuracy"]
    assert accuracy["dates"] >= 13
    assert accuracy["mae_fp"] < accuracy["baseline_mae_fp"]
    assert accuracy["mae_minutes"] < accuracy["baseline_mae_minutes"]


def test_script_step_records_a_black_box(seeded: str) -> None:
    assert run_pipeline_cli("run", "--start", DAY, "--store", seeded).returncode == 0
    store = open_store(seeded)
    key = Partition.build(game_date=DAY, run_as_of_ts=AS_OF, run_id="20241118T233000Z-base-w1000").key
    manifest = read_manifest(store, "script.dk_export", key)
    assert manifest.status == "success" and manifest.metrics["exit_code"] == 0
    assert any(o.path.endswith(".csv") for o in manifest.outputs)
    assert "wrote dk_upload_" in next(c.detail for c in manifest.checks if c.name == "stdout_tail")
    csv = store.get_bytes(manifest.outputs[0].path).decode()
    assert csv.startswith("player_id,salary,fp_mean,ownership_pct")

    broken = script_step(
        "broken",
        ["{python}", "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
        consumes=(),
        description="t",
    )
    failed = execute(
        broken,
        Partition.build(game_date=DAY, run_as_of_ts=AS_OF, run_id="x"),
        store,
        correlation_id="c",
    )
    assert failed.status == "failed" and failed.metrics["exit_code"] == 3
    assert "exited 3" in failed.error.message and "boom" in failed.error.message
