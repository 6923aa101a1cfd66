"""Resume decides from one listing: a resumed plan reads no manifest, on both backends, and a
failed, overwritten, edited, missing or foreign manifest still reruns its step (docs/decisions.md D22)."""

from __future__ import annotations

import builtins
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from steps.runtime import layout
from steps.runtime.manifest import (
    EnvironmentRecord,
    ErrorRecord,
    Manifest,
    OutputRecord,
    Timing,
    latest_records,
    partition_identity,
    write_manifest,
)
from steps.runtime.partition import Partition
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.store import Store, content_hash, frame_to_parquet
from steps.runtime.store.local import LocalStore
from tests.helpers import Recording
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph
from workflows.dag.model import Plan, PlannedStep
from workflows.dag.plan import make_plan, source_selections

DAYS = (date(2024, 11, 12), date(2024, 11, 13))
GROUP = "dg-1"
GRAPH = pipeline_graph()
NOW = datetime(2024, 11, 20, tzinfo=UTC)


class Counting(Recording):
    def manifest_reads(self) -> list[str]:
        return [k for k in self.reads if k.startswith("manifests/")]


def plan(store: Store, *, resume: bool = True) -> Plan:
    return make_plan(store, GRAPH, load_config(), start=DAYS[0], end=DAYS[-1], resume=resume)


def manifest(
    node: PlannedStep, status: str = "success", attempt: str = "", *, later: bool = False, **changes: Any
) -> Manifest:
    """A step's manifest; `later`: a rerun's, written after the first."""
    ended = NOW + timedelta(minutes=5) if later else NOW
    return Manifest(
        asset=node.asset,
        partition=node.partition.model_copy(update=changes),
        status=status,  # type: ignore[arg-type]
        timing=Timing(started_at=NOW, finished_at=ended, duration_s=0.1),
        environment=EnvironmentRecord(code_version="test", hostname="test", python="3"),
        correlation_id="test",
        attempt_id=f"{NOW:%Y%m%dT%H%M%SZ}-{attempt or status}",
        error=ErrorRecord(type="InjectedFault", message="boom") if status == "failed" else None,
    )


def succeed(store: Store, node: PlannedStep, *, named_groups: bool = True) -> None:
    """A success manifest as a step writes it; dk.salaries lists one draft group (in its
    record's name, too, unless `named_groups` is False, as before D22)."""
    done = manifest(node)
    if node.asset == DRAFT_GROUP_SOURCE[0]:
        data = frame_to_parquet(pd.DataFrame({DRAFT_GROUP_SOURCE[2]: [GROUP]}))
        path = layout.output_key(node.asset, node.partition.key, done.attempt_id or "", "data")
        store.put_bytes(path, data)
        done = done.model_copy(
            update={
                "outputs": [
                    OutputRecord(name="data", path=path, row_count=1, content_hash=content_hash(data))
                ],
                "draft_groups": [GROUP] if named_groups else [],
            }
        )
    write_manifest(store, done)


@pytest.fixture
def resumable(store: Store) -> Store:
    """Two slates whose every step partition (their draft group's too) has succeeded."""
    return _resumable(store)


def _resumable(store: Store, *, named_groups: bool = True) -> Store:
    for day in DAYS:
        tip = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=24)
        frame = pd.DataFrame(
            {
                "game_id": [f"{day}-g"],
                "game_date": [day.isoformat()],
                "season": [2024],
                "tip_ts": [pd.Timestamp(tip)],
                "home_team": ["BOS"],
                "away_team": ["NYK"],
            }
        )
        store.put_parquet(
            layout.landing_snapshot_key("schedule", day, datetime(2024, 8, 1, tzinfo=UTC)), frame
        )
    first = plan(store).nodes
    for node in first.values():
        succeed(store, node, named_groups=named_groups)
    for node_id, node in plan(store).nodes.items():  # and the draft group dk.salaries lists
        if node_id not in first:
            succeed(store, node)
    return store


def node_of(done: Plan, asset: str) -> PlannedStep:
    return next(n for n in done.nodes.values() if n.asset == asset)


def test_a_resumed_plan_reads_no_manifest_and_lists_every_asset_at_once(
    resumable: Store, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    opened: list[str] = []
    if isinstance(resumable, LocalStore):  # the directory store must not open a manifest either

        def watching(file: Any, *args: Any, **kwargs: Any) -> Any:
            opened.append(str(file))
            return builtins.open(file, *args, **kwargs)

        monkeypatch.setattr("steps.runtime.store.local.open", watching, raising=False)
    counting = Counting(resumable)
    done = plan(counting)
    assert done.steps_to_run == 0 and done.nodes
    assert {n.asset for n in done.nodes.values()} == set(GRAPH.order)
    assert all(n.reason == "success manifest exists" for n in done.nodes.values())
    assert counting.manifest_reads() == []
    assert not [f for f in opened if "/manifests/" in f]
    manifest_listings = [p for p in counting.listings if p.startswith("manifests/")]
    # every asset at once: one listing over the range's days and its season before it
    assert len(manifest_listings) == 1
    assert len(counting.listings) <= 3  # and the schedule, for tips and windows
    # The only other read: the first tips the first plan read from the slates' schedules
    # (workflows/dag/first_tips.py); the draft groups are in dk.salaries' record names.
    assert counting.reads == [layout.first_tips_key(2024)]


def test_draft_groups_not_in_a_record_name_are_read_from_its_attempts_output(store: Store) -> None:
    """A record written before D22 carried no groups: the plan reads the output its attempt
    wrote, and still reads no manifest."""
    resumable = _resumable(store, named_groups=False)
    counting = Counting(resumable)
    done = plan(counting)
    assert done.steps_to_run == 0 and any(n.partition.draft_group_id == GROUP for n in done.nodes.values())
    assert counting.manifest_reads() == []
    assert len([k for k in counting.reads if k.startswith(layout.RUNS)]) == len(DAYS)


def latest_key(store: Store, node: PlannedStep) -> str:
    run = layout.manifest_run_prefix(node.asset, node.partition.key)
    return latest_records(store.list(run))[run].key


def test_failed_overwritten_edited_missing_and_foreign_manifests_run_again(resumable: Store) -> None:
    done = plan(resumable)
    failed, corrupt, missing, foreign, edited = (
        node_of(done, a) for a in ("minutes.score", "rates.score", "sim.run", "ingest.odds", "ingest.lineups")
    )
    write_manifest(resumable, manifest(failed, "failed", later=True))
    resumable.put_bytes(latest_key(resumable, corrupt), b'{"asset": "rates.sc')
    resumable.delete(latest_key(resumable, missing))
    write_manifest(resumable, manifest(foreign, attempt="by-hand", later=True, worlds=7))  # the same run id
    # Valid JSON written by hand over a record: its bytes are not those its name was given for.
    by_hand = manifest(edited).model_copy(update={"reason": "edited"})
    resumable.put_json(latest_key(resumable, edited), by_hand.model_dump(mode="json"))
    wanted = {latest_key(resumable, n) for n in (corrupt, foreign, edited)}
    counting = Counting(resumable)
    again = plan(counting)
    to_run = {n.asset: n.reason for n in again.nodes.values() if n.action == "run"}
    assert to_run[failed.asset] == "previous attempt failed (InjectedFault)"
    assert to_run[corrupt.asset].startswith("unreadable manifest, a rerun writes a new one")
    assert to_run[missing.asset] == "no manifest yet"
    assert to_run[foreign.asset].startswith("its manifest was made for another partition (worlds differ)")
    assert "was changed after it was written" in to_run[edited.asset]
    assert set(to_run) == {failed.asset, corrupt.asset, missing.asset, foreign.asset, edited.asset}
    # Only the records their listing could not vouch for were read, each once.
    assert sorted(counting.manifest_reads()) == sorted(wanted)


def test_a_rerun_that_failed_after_a_success_is_the_latest(resumable: Store) -> None:
    node = node_of(plan(resumable), "sim.run")
    write_manifest(resumable, manifest(node, "failed", later=True))
    run = layout.manifest_run_prefix(node.asset, node.partition.key)
    records = [i for i in resumable.list(run) if layout.parse_record_key(i.key)]
    assert len(records) == 2  # the success's and the failure's, each its attempt's own
    assert latest_records(resumable.list(run))[run].name.status == "failed"
    assert node_of(plan(resumable), "sim.run").action == "run"


def test_no_resume_plans_every_step(resumable: Store) -> None:
    counting = Counting(resumable)
    done = plan(counting, resume=False)
    assert done.nodes and all(n.action == "run" for n in done.nodes.values())
    assert {n.reason for n in done.nodes.values()} == {
        "--no-resume: recompute into a new attempt (same run id)"
    }
    assert counting.manifest_reads() == []


def test_a_fresh_range_plans_everything_without_reading(store: Store) -> None:
    day = DAYS[0]
    frame = pd.DataFrame(
        {
            "game_id": ["g"],
            "game_date": [day.isoformat()],
            "season": [2024],
            "tip_ts": [pd.Timestamp(datetime(2024, 11, 13, tzinfo=UTC))],
            "home_team": ["BOS"],
            "away_team": ["NYK"],
        }
    )
    store.put_parquet(
        layout.landing_snapshot_key("schedule", day, datetime(2024, 8, 1, tzinfo=UTC)),
        frame,
    )
    counting = Counting(store)
    done = make_plan(counting, GRAPH, load_config(), start=day, end=day)
    assert done.nodes and {n.reason for n in done.nodes.values()} == {"no manifest yet"}
    assert counting.manifest_reads() == []
    picks = source_selections(store, GRAPH, done.partitions[0])  # what a dry run prints
    assert picks["schedule"].startswith(layout.landing_date_prefix("schedule", day))
    assert "no injuries snapshot" in picks["injuries"]


def test_identity_tells_partitions_apart() -> None:
    one = Partition.build(game_date=DAYS[0], run_as_of_ts="2024-11-12T23:30:00Z", run_id="r", worlds=100)
    assert partition_identity(one) == partition_identity(one.model_copy())
    assert partition_identity(one) != partition_identity(one.model_copy(update={"worlds": 200}))


def test_listings_carry_the_etag_a_put_returned(store: Store) -> None:
    etag = store.put_bytes("m/a.json", b"one")
    store.put_bytes("m/b.json", b"")
    listed = {i.key: i.etag for i in store.list("m/")}
    assert listed["m/a.json"] == etag == store.stat("m/a.json").etag  # type: ignore[union-attr]
    again = store.put_bytes("m/a.json", b"two")
    assert again != etag and {i.key: i.etag for i in store.list("m/")}["m/a.json"] == again
    assert [i.key for i in store.list_after("m/", "m/a.json", "m/c")] == ["m/b.json"]
    assert [i.key for i in store.list_after("m/", "", "m/b")] == ["m/a.json"]


def test_a_directory_file_changed_behind_the_store_lists_its_new_etag(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = LocalStore(tmp_path / "store")
    store.put_bytes("m/a.json", b"one")
    path = tmp_path / "store" / "m" / "a.json"
    path.write_bytes(b"changed in place")
    [info] = store.list("m/")
    assert info.etag == store.get_with_etag("m/a.json")[1] and info.size == len(b"changed in place")
