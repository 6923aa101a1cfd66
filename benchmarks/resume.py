"""Resume planning over a 4-season range on MinIO, with every store request counted."""

from __future__ import annotations

import builtins
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from steps.runtime import layout
from steps.runtime.manifest import (
    EnvironmentRecord,
    Manifest,
    OutputRecord,
    Timing,
    read_manifest,
    write_manifest,
)
from steps.runtime.partition import Partition
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.store import ObjectInfo, Store, content_hash, frame_to_parquet, open_store
from synthetic.season import season_bounds
from workflows.dag.config import load_config
from workflows.dag.graph import Graph, pipeline_graph
from workflows.dag.plan import make_plan
from workflows.dag.resume import LIST_PAGE

# ---- 3. resume planning over ~9,000 manifests on MinIO -----------------------------------


def list_pages(keys: int) -> int:
    """The requests a listing of `keys` keys makes: one a page, and one when there are none."""
    return max(1, -(-keys // LIST_PAGE))


class CountingStore(Store):
    """Counts requests: one per GET, one per 1,000 keys listed (S3 list-v2 page size)."""

    def __init__(self, inner: Store) -> None:
        self.inner, self.url = inner, inner.url
        self.gets = self.list_pages = 0

    def put_bytes(self, key: str, data: bytes) -> str:
        return self.inner.put_bytes(key, data)

    def get_bytes(self, key: str) -> bytes:
        self.gets += 1
        return self.inner.get_bytes(key)

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        self.gets += 1
        return self.inner.get_with_etag(key)

    def put_if(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        return self.inner.put_if(key, data, if_match=if_match, if_none_match=if_none_match)

    def stat(self, key: str) -> ObjectInfo | None:
        self.gets += 1
        return self.inner.stat(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        items = list(self.inner.list(prefix))
        self.list_pages += list_pages(len(items))
        return iter(items)

    def list_dirs(self, prefix: str) -> builtins.list[str]:
        self.list_pages += 1
        return self.inner.list_dirs(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


def _range_days(dates: int) -> list[date]:
    """The first slates of four seasons, `dates` in all."""
    seasons = [2021, 2022, 2023, 2024]
    return [
        d
        for s in seasons
        for d in (season_bounds(s)[0] + timedelta(days=i) for i in range(dates // len(seasons)))
    ]


def _schedule(day: date) -> tuple[str, pd.DataFrame]:
    """A one-game schedule snapshot for `day`, landed where the planner looks for it."""
    tip = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=24)
    frame = pd.DataFrame(
        {
            "game_id": [f"{day}-g"],
            "game_date": [day.isoformat()],
            "season": [day.year],
            "tip_ts": [pd.Timestamp(tip)],
            "home_team": ["BOS"],
            "away_team": ["NYK"],
        }
    )
    landed = datetime(day.year, 1, 1, tzinfo=UTC) if day.month < 8 else datetime(day.year, 8, 1, tzinfo=UTC)
    return layout.landing_snapshot_key("schedule", day, landed), frame


def _success_manifests(store: Store, graph: Graph, days: list[date]) -> int:
    """Every partition the range needs, as the planner names them, gets a success manifest
    written as a step writes it (its attempt's one record, D22); each slate's dk.salaries lists
    one draft group, in its attempt's output and its manifest."""
    first = make_plan(store, graph, load_config(), start=min(days), end=max(days))
    partitions = [(n.asset, n.partition) for n in first.nodes.values()]
    partitions += [
        (asset, slate.partition.model_copy(update={"shape": "draft_group", "draft_group_id": "dg-1"}))
        for slate in first.partitions
        for asset in graph.order
        if graph.specs[asset].shape.name == "draft_group"
    ]
    now = datetime.now(UTC)
    attempt = f"{now:%Y%m%dT%H%M%SZ}-bench"
    salaries = frame_to_parquet(pd.DataFrame({"draft_group_id": ["dg-1"]}))

    def write(item: tuple[str, Partition]) -> None:
        asset, partition = item
        outputs, groups = [], []
        if asset == DRAFT_GROUP_SOURCE[0]:
            groups = ["dg-1"]
            path = layout.output_key(asset, partition.key, attempt, DRAFT_GROUP_SOURCE[1])
            store.put_bytes(path, salaries)
            outputs = [OutputRecord(name="data", path=path, row_count=1, content_hash=content_hash(salaries))]
        manifest = Manifest(
            asset=asset,
            partition=partition,
            status="success",
            timing=Timing(started_at=now, finished_at=now, duration_s=0.1),
            environment=EnvironmentRecord(code_version="bench", hostname="bench", python="3"),
            correlation_id="bench",
            outputs=outputs,
            attempt_id=attempt,
            draft_groups=groups,
        )
        write_manifest(store, manifest)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(write, partitions))
    return len(partitions)


class ByPurpose(CountingStore):
    """Also tells the requests about manifests (the state decisions) from the others."""

    manifest_gets = manifest_pages = 0

    def get_bytes(self, key: str) -> bytes:
        self.manifest_gets += key.startswith(layout.MANIFESTS)
        return super().get_bytes(key)

    def list_after(self, prefix: str, start_after: str, stop: str) -> Iterator[ObjectInfo]:
        items = list(self.inner.list_after(prefix, start_after, stop))
        pages = list_pages(len(items))
        self.list_pages += pages
        self.manifest_pages += pages if prefix.startswith(layout.MANIFESTS) else 0
        return iter(items)


def resume_planning(work: Path, dates: int = 450) -> dict[str, Any]:
    sys.path.insert(0, str(Path.cwd()))
    from tests.servers import MinioServer, free_port

    server = MinioServer(data_dir=work / "minio", port=free_port()).start()
    try:
        os.environ.update(server.env())
        store = open_store("s3://bench-resume", create=True)
        graph = pipeline_graph()
        days = _range_days(dates)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda item: store.put_parquet(*item), [_schedule(d) for d in days]))
        manifests = _success_manifests(store, graph, days)
        # The first plan of a store reads every slate's schedule for its first tip; the plans
        # after it read what that one remembered (D23). Both are timed; the target is a resume.
        for cached in store.list(layout.CACHE):
            store.delete(cached.key)
        began = time.perf_counter()
        make_plan(store, graph, load_config(), start=min(days), end=max(days))
        first_plan = time.perf_counter() - began
        counting = ByPurpose(store)
        began = time.perf_counter()
        plan = make_plan(counting, graph, load_config(), start=min(days), end=max(days))
        seconds = time.perf_counter() - began
        assert plan.steps_to_run == 0, "every step should be reused by resume"
        # The same decisions as before D19: one GET per manifest (16 at a time), side by side.
        began = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: read_manifest(store, *n), plan.nodes))
        return {
            "dates": len(days),
            "calendar_days": (max(days) - min(days)).days + 1,
            "manifests": manifests,
            "seconds": seconds,
            "first_plan_seconds": first_plan,
            "gets": counting.gets,
            "manifest_gets": counting.manifest_gets,
            "list_pages": counting.list_pages,
            "manifest_pages": counting.manifest_pages,
            # What the target counts: the requests that decide the steps' states.
            "requests": counting.manifest_gets + counting.manifest_pages,
            "get_per_manifest_s": time.perf_counter() - began,
        }
    finally:
        server.stop()
