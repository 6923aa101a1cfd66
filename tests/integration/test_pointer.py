"""The pointer protocol on both backends, including multi-process compare-and-swap."""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from steps.runtime import layout
from steps.runtime.errors import ManifestError, PointerRefused
from steps.runtime.manifest import read_manifest
from steps.runtime.partition import PartitionKey
from steps.runtime.pointer import (
    current_run,
    history_key,
    list_history,
    promote,
    read_pointer,
    rollback,
)
from steps.runtime.store import Store, dumps_json, open_store
from tests.helpers import make_manifest

ASSET = "finalize.unified"
SCOPE = "current/finalize.unified/game_date=2025-01-15/"


def key(run_id: str) -> PartitionKey:
    return PartitionKey.from_segments(f"game_date=2025-01-15/run={run_id}")


def test_promote_history_and_rollback(store: Store) -> None:
    make_manifest(store, ASSET, "r1", as_of="2025-01-15T20:00:00Z")
    make_manifest(store, ASSET, "r2", as_of="2025-01-15T22:00:00Z")
    p1 = promote(store, SCOPE, asset=ASSET, key=key("r1"), reason="first")
    assert p1.seq == 1 and p1.previous is None
    assert promote(store, SCOPE, asset=ASSET, key=key("r1"), reason="again").seq == 1  # idempotent
    p2 = promote(store, SCOPE, asset=ASSET, key=key("r2"), reason="newer")
    assert p2.seq == 2 and p2.previous is not None and p2.previous.run_id == "r1"
    back = rollback(store, SCOPE, to_seq=1, reason="bad projections")
    assert back.run_id == "r1" and back.seq == 3 and "rollback to version 1: bad projections" in back.reason
    assert [p.run_id for p in list_history(store, SCOPE)] == ["r1", "r2", "r1"]
    with pytest.raises(PointerRefused, match="no history version 9"):
        rollback(store, SCOPE, to_seq=9, reason="x")


def test_refuses_run_without_success_manifest(store: Store) -> None:
    with pytest.raises(ManifestError, match="no manifest"):
        promote(store, SCOPE, asset=ASSET, key=key("ghost"), reason="x")
    make_manifest(store, ASSET, "broken", status="failed")
    with pytest.raises(ManifestError, match="not success"):
        promote(store, SCOPE, asset=ASSET, key=key("broken"), reason="x")
    assert current_run(store, SCOPE) is None


def test_refuses_to_move_back_in_time_unless_forced(store: Store) -> None:
    make_manifest(store, ASSET, "daily", as_of="2025-01-15T23:00:00Z")
    make_manifest(store, ASSET, "late-backfill", as_of="2025-01-15T18:00:00Z")
    promote(store, SCOPE, asset=ASSET, key=key("daily"), reason="daily")
    with pytest.raises(PointerRefused, match="back in time"):
        promote(store, SCOPE, asset=ASSET, key=key("late-backfill"), reason="backfill")
    assert current_run(store, SCOPE).run_id == "daily"
    forced = promote(store, SCOPE, asset=ASSET, key=key("late-backfill"), reason="operator", force=True)
    assert forced.run_id == "late-backfill"


def test_missing_history_entry_is_repaired(store: Store) -> None:
    make_manifest(store, ASSET, "r1")
    make_manifest(store, ASSET, "r2")
    p1 = promote(store, SCOPE, asset=ASSET, key=key("r1"), reason="x")
    store.delete(history_key(SCOPE, 1))  # as if the writer died between pointer and history
    promote(store, SCOPE, asset=ASSET, key=key("r2"), reason="y")
    assert [p.seq for p in list_history(store, SCOPE)] == [1, 2]
    assert list_history(store, SCOPE)[0] == p1


def _contender(url: str, env: dict[str, str], worker: int, rounds: int, queue: mp.Queue) -> None:
    os.environ.update(env)
    store = open_store(url)
    won = []
    for i in range(rounds):
        run_id = f"w{worker}-r{i}"
        won.append(promote(store, SCOPE, asset=ASSET, key=key(run_id), reason=run_id).seq)
    queue.put(won)


def test_concurrent_promotes_lose_nothing(store: Store) -> None:
    workers, rounds = 6, 5
    for w in range(workers):
        for i in range(rounds):
            make_manifest(store, ASSET, f"w{w}-r{i}")
    env = {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_S3_")}
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_contender, args=(store.url, env, w, rounds, queue)) for w in range(workers)]
    for p in procs:
        p.start()
    seqs = sorted(s for _ in procs for s in queue.get(timeout=120))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    total = workers * rounds
    assert seqs == list(range(1, total + 1))  # every promote got its own version
    history = list_history(store, SCOPE)
    assert [p.seq for p in history] == list(range(1, total + 1))
    assert {p.run_id for p in history} == {f"w{w}-r{i}" for w in range(workers) for i in range(rounds)}
    for version in history[1:]:
        assert version.previous is not None and version.previous.seq == version.seq - 1
    current, _ = read_pointer(store, SCOPE)
    assert current.seq == total
    for version in history:  # the pointer never named a run without a success manifest
        assert read_manifest(store, ASSET, version.key).status == "success"


def test_model_pointer_scope(store: Store) -> None:
    make_manifest(store, "minutes.train", "m1")
    scope = layout.model_pointer_scope("minutes")
    assert promote(store, scope, asset="minutes.train", key=key("m1"), reason="x").scope == "models/minutes/"
    assert store.exists("models/minutes/current_run.json")
    assert store.get_bytes("models/minutes/history/00000001.json") == dumps_json(
        current_run(store, scope).model_dump(mode="json")
    )
