"""The partition-mapped DAG end to end: each asset's own partition shape, the mappings between
them, dynamic draft groups, the tracking window, and the backfill modes, on both backends."""

from __future__ import annotations

import json
from datetime import date

import pytest

from steps.pipeline.settle import settle_time
from steps.runtime import layout
from steps.runtime.manifest import list_manifests, read_manifest, record_of
from steps.runtime.partition import PartitionKey
from steps.runtime.pointer import current_run
from steps.runtime.store import Store, open_store
from tests.helpers import latest_summary, run_pipeline_cli, run_steps_cli

TWO_GROUPS = "2024-11-10"  # the seeded slate with two draft groups
GROUPS = ["dg-20241110-all", "dg-20241110-main"]


def run(store: str, start: str, end: str, *extra: str):  # type: ignore[no-untyped-def]
    return run_pipeline_cli("run", "--start", start, "--end", end, "--store", store, *extra)


def manifests(store: Store, asset: str) -> list:  # type: ignore[type-arg]
    return [m for m in list_manifests(store, layout.MANIFESTS) if m.asset == asset]


@pytest.fixture(params=["file", "s3"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("seeded" if request.param == "file" else "seeded_s3"))


def test_each_asset_has_its_own_partitions(url: str) -> None:
    result = run(url, "2024-11-09", TWO_GROUPS)
    assert result.returncode == 0, result.stdout + result.stderr
    store = open_store(url)
    # A month's schedule once per range, as of the range's first slate in the month.
    [schedule] = manifests(store, "ingest.schedule")
    assert schedule.partition.key.segments() == "month=2024-11/run=20241109T233000Z-base-w1000"
    assert schedule.metrics["days"] >= 2
    # Draft groups: one finalize manifest and one current pointer each.
    unified = [m for m in manifests(store, "finalize.unified") if m.partition.game_date == date(2024, 11, 10)]
    assert sorted(m.partition.draft_group_id for m in unified) == GROUPS
    for group in GROUPS:
        pointer = current_run(
            store,
            layout.pointer_scope(
                "finalize.unified", PartitionKey(game_date=date(2024, 11, 10), draft_group_id=group)
            ),
        )
        assert pointer is not None and pointer.draft_group_id == group
    # Labels are one partition per settled date, for every run.
    labels = manifests(store, "labels.minutes")
    assert {m.partition.key.segments() for m in labels} == {"game_date=2024-11-09", "game_date=2024-11-10"}
    # The summary speaks in partitions.
    summary = latest_summary(store)
    assert summary["partitions"]["succeeded"] == 2
    assert summary["partitions"]["shared"] == 9 + 1  # the windows' slates (11-01..11-09), the month
    assert summary["partitions"]["shared_failed"] == 0
    # Resume works per partition: nothing left to do.
    again = run(url, "2024-11-09", TWO_GROUPS)
    assert again.returncode == 0 and "Nothing to do" in again.stdout, again.stdout


def test_the_window_reads_only_what_settled_by_its_as_of(url: str) -> None:
    result = run(url, "2024-11-12", "2024-11-14")
    assert result.returncode == 0, result.stdout + result.stderr
    store = open_store(url)
    roles = manifests(store, "tracking.roles")
    assert len(roles) == 3
    landed = sorted(d for d in _landed_dates(store) if d.year == 2024)
    for manifest in roles:
        as_of = manifest.partition.run_as_of_ts
        read = sorted(
            # runs/<asset>/<partition>/attempt=<id>/<output>
            PartitionKey.from_segments(i.path.split("/", 2)[2].split("/attempt=")[0]).game_date
            for i in manifest.inputs
        )
        expected = [d for d in landed if d < manifest.partition.game_date and settle_time(d) <= as_of]
        assert read == expected and read, (manifest.partition.game_date, read)
        assert all(settle_time(d) <= as_of for d in read)  # nothing from after its as-of
    # Every window slate ran once for the whole range, however many windows read it.
    scrapes = manifests(store, "tracking.scrape")
    assert len(scrapes) == len({m.partition.game_date for m in scrapes})
    assert max(m.partition.game_date for m in scrapes) == date(2024, 11, 13)


def _landed_dates(store: Store) -> list[date]:
    return [
        PartitionKey.from_segments(d.rstrip("/").rsplit("/", 1)[-1]).game_date  # type: ignore[misc]
        for d in store.list_dirs(layout.landing_source_prefix("schedule"))
    ]


def test_one_draft_group_reruns_and_promotes_alone(seeded: str) -> None:
    assert run(seeded, TWO_GROUPS, TWO_GROUPS).returncode == 0
    store = open_store(seeded)
    day = date(2024, 11, 10)
    keys = {g: PartitionKey(game_date=day, draft_group_id=g) for g in GROUPS}
    before = {g: current_run(store, layout.pointer_scope("finalize.unified", k)) for g, k in keys.items()}
    untouched = {str(m.partition.key.segments()): m.timing for m in manifests(store, "finalize.unified")}
    rerun = run(
        seeded,
        TWO_GROUPS,
        TWO_GROUPS,
        "--draft-group",
        GROUPS[1],
        "--steps",
        "ownership.score",
        "--force",
        "--reason",
        "late salary change on the main slate",
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = {g: current_run(store, layout.pointer_scope("finalize.unified", k)) for g, k in keys.items()}
    assert after[GROUPS[0]] == before[GROUPS[0]]  # the other group is untouched
    assert after[GROUPS[1]].run_id != before[GROUPS[1]].run_id and after[GROUPS[1]].seq == 2  # type: ignore[union-attr]
    for m in manifests(store, "finalize.unified"):
        if m.partition.key.segments() in untouched:
            assert m.timing == untouched[m.partition.key.segments()]
    new = [m for m in manifests(store, "ownership.score") if m.partition.run_id == after[GROUPS[1]].run_id]  # type: ignore[union-attr]
    assert [m.partition.draft_group_id for m in new] == [GROUPS[1]]
    assert new[0].reason == "late salary change on the main slate"
    summary = latest_summary(store)
    assert summary["options"]["reason"] == "late salary change on the main slate"
    assert summary["options"]["draft_groups"] == [GROUPS[1]]


def test_no_downstream_reprocesses_one_asset_and_cascade_is_the_default(seeded: str) -> None:
    assert run(seeded, "2024-11-14", "2024-11-14").returncode == 0
    store = open_store(seeded)
    only = run(seeded, "2024-11-14", "2024-11-14", "--steps", "ingest.odds", "--no-downstream", "--force")
    assert only.returncode == 0, only.stdout + only.stderr
    assert latest_summary(store)["steps"].keys() == {"ingest.odds"}
    cascade = run(seeded, "2024-11-14", "2024-11-14", "--steps", "ingest.odds", "--force", "--dry-run")
    assert cascade.returncode == 0
    for downstream in ("minutes.features", "sim.run", "finalize.unified", "promote"):
        assert downstream in cascade.stdout
    bad = run(seeded, "2024-11-14", "2024-11-14", "--no-downstream")
    assert bad.returncode == 2 and "--no-downstream goes with --steps" in bad.stderr


def test_the_dry_run_shows_partitions_and_writes_nothing(seeded: str) -> None:
    result = run(seeded, "2024-11-09", TWO_GROUPS, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "ingest.schedule 1 (2024-11)" in result.stdout
    assert "draft groups of 2024-11-10 when dk.salaries has run" in result.stdout
    assert (
        "Shared partitions: 10 (10 to run: ingest.schedule 2024-11, tracking.scrape 2024-11-01"
        in result.stdout
    )
    assert not list(open_store(seeded).list("manifests/"))


def test_the_draft_group_list_is_what_with_param_takes(seeded: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    outputs = tmp_path / "out"
    args = ["dk.salaries", "--game-date", TWO_GROUPS, "--run-id", "r1", "--as-of", "2024-11-10T23:00:00Z"]
    result = run_steps_cli(*args, "--store", seeded, "--outputs-dir", str(outputs))
    assert result.returncode == 0, result.stderr
    listed = json.loads((outputs / "draft_groups.json").read_text())
    assert listed == GROUPS and all(isinstance(g, str) for g in listed)  # a JSON list of strings
    manifest = read_manifest(
        open_store(seeded), "dk.salaries", PartitionKey(game_date=date(2024, 11, 10), run_id="r1")
    )
    assert manifest is not None and manifest.status == "success"
    # The node's outputs name the attempt manifest it wrote (what the UI shows for a pod).
    node = json.loads((outputs / "summary.json").read_text())
    assert node["manifest"] == record_of(manifest)[0]
    assert f"/attempt={manifest.attempt_id}," in node["manifest"]
    assert manifest.draft_groups == GROUPS  # and its record's name carries them (D22)
    assert node["manifest"].endswith(f".{'.'.join(GROUPS)}.json")
    assert open_store(seeded).get_json(node["manifest"])["attempt_id"] == manifest.attempt_id
