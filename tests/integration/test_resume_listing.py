"""Resume decides from listings: a resumed plan reads no manifest, on both backends, and a
failed, overwritten, missing or foreign manifest still reruns its step (docs/decisions.md D19)."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
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
    latest_marks,
    partition_identity,
    write_manifest,
)
from steps.runtime.partition import Partition, PartitionKey
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.store import ObjectInfo, Store, content_hash, frame_to_parquet
from steps.runtime.store.local import LocalStore
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph
from workflows.dag.model import Plan, PlannedStep
from workflows.dag.plan import make_plan, source_selections

DAYS = (date(2024, 11, 12), date(2024, 11, 13))
GROUP = "dg-1"
GRAPH = pipeline_graph()
NOW = datetime(2024, 11, 20, tzinfo=UTC)


class Counting(Store):
    """Records what a plan asks of the store: each read by key, each listing by prefix."""

    def __init__(self, inner: Store) -> None:
        self.inner, self.url = inner, inner.url
        self.reads: list[str] = []
        self.listings: list[str] = []

    def put_bytes(self, key: str, data: bytes) -> str:
        return self.inner.put_bytes(key, data)

    def put_if(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        return self.inner.put_if(key, data, if_match=if_match, if_none_match=if_none_match)

    def get_bytes(self, key: str) -> bytes:
        self.reads.append(key)
        return self.inner.get_bytes(key)

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        self.reads.append(key)
        return self.inner.get_with_etag(key)

    def stat(self, key: str) -> ObjectInfo | None:
        self.reads.append(key)
        return self.inner.stat(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self.listings.append(prefix)
        return self.inner.list(prefix)

    def list_after(self, prefix: str, start_after: str, stop: str) -> Iterator[ObjectInfo]:
        self.listings.append(prefix)
        return self.inner.list_after(prefix, start_after, stop)

    def list_dirs(self, prefix: str) -> list[str]:
        self.listings.append(prefix)
        return self.inner.list_dirs(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def manifest_reads(self) -> list[str]:
        return [k for k in self.reads if k.startswith("manifests/")]


def plan(store: Store, *, resume: bool = True) -> Plan:
    return make_plan(store, GRAPH, load_config(), start=DAYS[0], end=DAYS[-1], resume=resume)


def manifest(node: PlannedStep, status: str = "success", attempt: str = "", **changes: Any) -> Manifest:
    return Manifest(
        asset=node.asset,
        partition=node.partition.model_copy(update=changes),
        status=status,  # type: ignore[arg-type]
        timing=Timing(started_at=NOW, finished_at=NOW, duration_s=0.1),
        environment=EnvironmentRecord(code_version="test", hostname="test", python="3"),
        correlation_id="test",
        attempt_id=f"{NOW:%Y%m%dT%H%M%SZ}-{attempt or status}",
        error=ErrorRecord(type="InjectedFault", message="boom") if status == "failed" else None,
    )


def succeed(store: Store, node: PlannedStep) -> None:
    """A success manifest as a step writes it; dk.salaries lists one draft group."""
    done = manifest(node)
    if node.asset == DRAFT_GROUP_SOURCE[0]:
        data = frame_to_parquet(pd.DataFrame({DRAFT_GROUP_SOURCE[2]: [GROUP]}))
        path = layout.output_key(node.asset, node.partition.key, done.attempt_id or "", "data")
        store.put_bytes(path, data)
        done = done.model_copy(
            update={
                "outputs": [
                    OutputRecord(name="data", path=path, row_count=1, content_hash=content_hash(data))
                ]
            }
        )
    write_manifest(store, done)


@pytest.fixture
def resumable(store: Store) -> Store:
    """Two slates whose every step partition (their draft group's too) has succeeded."""
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
        succeed(store, node)
    for node_id, node in plan(store).nodes.items():  # and the draft group dk.salaries lists
        if node_id not in first:
            succeed(store, node)
    return store


def node_of(done: Plan, asset: str) -> PlannedStep:
    return next(n for n in done.nodes.values() if n.asset == asset)


def test_a_resumed_plan_reads_no_manifest_and_lists_once_per_asset(resumable: Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
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
    assert len(manifest_listings) == len(GRAPH.order)  # one range listing per asset, that's all
    assert len(counting.listings) <= len(GRAPH.order) + 2  # and the schedule, for tips and windows
    # The other reads: each slate's schedule snapshot (its first tip) and its draft groups.
    assert len(counting.reads) == 2 * len(DAYS)


def test_failed_overwritten_missing_and_foreign_manifests_run_again(resumable: Store) -> None:
    done = plan(resumable)
    failed, corrupt, missing, foreign, crashed = (
        node_of(done, a) for a in ("minutes.score", "rates.score", "sim.run", "ingest.odds", "ingest.lineups")
    )
    write_manifest(resumable, manifest(failed, "failed"))
    resumable.put_bytes(layout.manifest_key(corrupt.asset, corrupt.partition.key), b'{"asset": "rates.sc')
    resumable.delete(layout.manifest_key(missing.asset, missing.partition.key))
    write_manifest(resumable, manifest(foreign, attempt="by-hand", worlds=7))  # the same run id
    # A crash between manifest.json and its mark: the manifest is read, and reused.
    latest = manifest(crashed, attempt="later")
    resumable.put_json(
        layout.manifest_key(crashed.asset, crashed.partition.key), latest.model_dump(mode="json")
    )
    counting = Counting(resumable)
    again = plan(counting)
    to_run = {n.asset: n.reason for n in again.nodes.values() if n.action == "run"}
    assert to_run[failed.asset] == "previous attempt failed (InjectedFault)"
    assert to_run[corrupt.asset].startswith("unreadable manifest, rewritten by the rerun")
    assert to_run[missing.asset] == "no manifest yet"
    assert to_run[foreign.asset].startswith("its manifest was made for another partition (worlds differ)")
    assert crashed.asset not in to_run  # and neither is anything else
    assert set(to_run) == {failed.asset, corrupt.asset, missing.asset, foreign.asset}
    # Only the manifests no mark vouches for were read, each once.
    wanted = {layout.manifest_key(n.asset, n.partition.key) for n in (corrupt, foreign, crashed)}
    assert sorted(counting.manifest_reads()) == sorted(wanted)


def test_a_rerun_that_failed_after_a_success_is_not_hidden_by_the_old_mark(resumable: Store) -> None:
    node = node_of(plan(resumable), "sim.run")
    write_manifest(resumable, manifest(node, "failed"))
    run = layout.manifest_run_prefix(node.asset, node.partition.key)
    marks = [i for i in resumable.list(run) if "/state/" in i.key]
    assert len(marks) == 2  # the success's and the failure's: only the latter names manifest.json
    assert latest_marks(resumable.list(run))[run].status == "failed"  # type: ignore[union-attr]
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


def test_marks_are_keys_that_parse_back() -> None:
    key = PartitionKey(game_date=DAYS[0], run_id="20241112T233000Z-base-w1000")
    mark = layout.ManifestMark(
        "failed", "0123456789abcdef", "d41d8cd98f00b204e9800998ecf8427e", "CheckFailed", "a-1"
    )
    built = layout.manifest_mark_key("sim.run", key, mark)
    assert built is not None and built.startswith(layout.manifest_run_prefix("sim.run", key))
    assert layout.parse_manifest_listing(built) == (layout.manifest_run_prefix("sim.run", key), mark)
    assert layout.parse_manifest_listing(layout.manifest_key("sim.run", key)) == (
        layout.manifest_run_prefix("sim.run", key),
        None,
    )
    assert layout.parse_manifest_listing(layout.attempt_manifest_key("sim.run", key, "a-1")) is None
    odd = layout.ManifestMark("success", "0123456789abcdef", "not/an.etag")
    assert layout.manifest_mark_key("sim.run", key, odd) is None  # then the manifest is read


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
