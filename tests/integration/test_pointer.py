"""The pointer protocol on both backends, including multi-process compare-and-swap."""

from __future__ import annotations

import builtins
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator

import pytest

from steps.runtime import layout
from steps.runtime.errors import (
    Deterministic,
    ManifestError,
    ObjectNotFound,
    PointerContended,
    PointerRefused,
    PreconditionFailed,
    StoreUnavailable,
)
from steps.runtime.layout import history_key, pointer_key
from steps.runtime.manifest import read_manifest, record_of
from steps.runtime.partition import PartitionKey
from steps.runtime.pointer import (
    DivergentHistory,
    current_run,
    list_history,
    promote,
    read_pointer,
    rollback,
)
from steps.runtime.store import ObjectInfo, Store, dumps_json, open_store
from tests.helpers import make_manifest

ASSET = "finalize.unified"
SCOPE = "current/finalize.unified/game_date=2025-01-15/"


def key(run_id: str) -> PartitionKey:
    return PartitionKey.from_segments(f"game_date=2025-01-15/run={run_id}")


def test_losing_every_race_is_contention_a_retry_may_cure_not_a_refusal(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a pointer that must not move (back in time, no success manifest) is refused, which the
    promote step reports as not_promoted; a pointer others kept moving fails retryably."""
    import steps.runtime.pointer as pointer_module

    make_manifest(store, ASSET, "r1", as_of="2025-01-15T20:00:00Z")
    monkeypatch.setattr(pointer_module, "_swap", lambda *args: False)  # every race lost
    with pytest.raises(PointerContended, match="after 3 lost races") as raised:
        promote(store, SCOPE, asset=ASSET, key=key("r1"), reason="contended", max_attempts=3)
    assert not isinstance(raised.value, Deterministic)  # so the step's error is retryable (exit 1)
    assert read_pointer(store, SCOPE) is None


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
    assert (current := current_run(store, SCOPE)) is not None and current.run_id == "daily"
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


class HookedStore(Store):
    """Delegates to `inner`, calling `before(key, if_match)` ahead of each conditional put and
    `after(key)` once it succeeded: other writers, deletions and crashes, at exact moments."""

    def __init__(
        self,
        inner: Store,
        *,
        before: Callable[[str, str | None], None] | None = None,
        after: Callable[[str], None] | None = None,
    ) -> None:
        self.inner, self.url = inner, inner.url
        self.before, self.after = before, after

    def put_if(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        if self.before:
            self.before(key, if_match)
        etag = self.inner.put_if(key, data, if_match=if_match, if_none_match=if_none_match)
        if self.after:
            self.after(key)
        return etag

    def put_bytes(self, key: str, data: bytes) -> str:
        return self.inner.put_bytes(key, data)

    def get_bytes(self, key: str) -> bytes:
        return self.inner.get_bytes(key)

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        return self.inner.get_with_etag(key)

    def stat(self, key: str) -> ObjectInfo | None:
        return self.inner.stat(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def list_dirs(self, prefix: str) -> builtins.list[str]:
        return self.inner.list_dirs(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


def _promote_three(store: Store) -> None:
    for i, hour in ((1, 18), (2, 20), (3, 22)):
        make_manifest(store, ASSET, f"r{i}", as_of=f"2025-01-15T{hour}:00:00Z")
        assert promote(store, SCOPE, asset=ASSET, key=key(f"r{i}"), reason=f"v{i}").seq == i


def test_lost_pointer_continues_the_history(store: Store) -> None:
    _promote_three(store)
    original = list_history(store, SCOPE)
    store.delete(pointer_key(SCOPE))  # lost; history/ remains
    make_manifest(store, ASSET, "r4", as_of="2025-01-15T23:00:00Z")
    p4 = promote(store, SCOPE, asset=ASSET, key=key("r4"), reason="after the loss")
    assert p4.seq == 4  # not 1 again: the lineage continues after the newest entry
    assert p4.previous is not None and (p4.previous.seq, p4.previous.run_id) == (3, "r3")
    assert list_history(store, SCOPE) == [*original, p4]
    back = rollback(store, SCOPE, to_seq=1, reason="restore the first")
    assert (back.seq, back.run_id) == (5, "r1")  # version 1 is still the original run
    assert back.previous is not None and back.previous.seq == 4
    assert [p.run_id for p in list_history(store, SCOPE)] == ["r1", "r2", "r3", "r4", "r1"]

    # Restoring the same run the newest entry names (what catch-up does) is a new version too.
    store.delete(pointer_key(SCOPE))
    again = promote(store, SCOPE, asset=ASSET, key=key("r1"), reason="pointer missing")
    assert (again.seq, again.run_id, again.previous.seq if again.previous else None) == (6, "r1", 5)
    assert current_run(store, SCOPE) == again


def test_pointer_behind_its_history_never_reuses_a_slot(store: Store) -> None:
    _promote_three(store)
    slot3 = store.get_bytes(history_key(SCOPE, 3))
    store.put_bytes(pointer_key(SCOPE), store.get_bytes(history_key(SCOPE, 2)))  # put back by hand
    make_manifest(store, ASSET, "r4", as_of="2025-01-15T23:00:00Z")
    p4 = promote(store, SCOPE, asset=ASSET, key=key("r4"), reason="after the restore")
    assert p4.seq == 4 and p4.previous is not None and p4.previous.seq == 2  # what was current
    assert store.get_bytes(history_key(SCOPE, 3)) == slot3
    assert [p.seq for p in list_history(store, SCOPE)] == [1, 2, 3, 4]


def test_divergent_history_slot_is_refused(store: Store) -> None:
    _promote_three(store)
    slot1 = store.get_bytes(history_key(SCOPE, 1))
    # What the old protocol did after a lost pointer: restart at version 1 with another run.
    found = read_pointer(store, SCOPE)
    assert found is not None
    forked = found[0].model_copy(update={"seq": 1, "previous": None})
    store.put_bytes(pointer_key(SCOPE), dumps_json(forked.model_dump(mode="json")))
    make_manifest(store, ASSET, "r4", as_of="2025-01-15T23:00:00Z")
    with pytest.raises(DivergentHistory, match=r"divergent pointer history: .*history/00000001\.json"):
        promote(store, SCOPE, asset=ASSET, key=key("r4"), reason="x")
    assert store.get_bytes(history_key(SCOPE, 1)) == slot1  # never overwritten

    # A slot taken between the pointer's CAS and its history write (step 5) is refused too.
    store.delete(pointer_key(SCOPE))
    intruder = list_history(store, SCOPE)[0].model_copy(update={"seq": 4})

    def squat(key_: str) -> None:
        if key_ == pointer_key(SCOPE):
            store.put_bytes(history_key(SCOPE, 4), dumps_json(intruder.model_dump(mode="json")))

    with pytest.raises(DivergentHistory, match=r"history/00000004\.json already holds version 4: run r1"):
        promote(HookedStore(store, after=squat), SCOPE, asset=ASSET, key=key("r4"), reason="x")
    assert list_history(store, SCOPE)[3] == intruder


def test_identical_history_slot_is_a_retry(store: Store) -> None:
    # The history PUT landed but its response was lost, and the client's resend got 412.
    make_manifest(store, ASSET, "r1")

    def resent(key_: str) -> None:
        if key_ == history_key(SCOPE, 1):
            raise PreconditionFailed("already exists (the resend)")

    p1 = promote(HookedStore(store, after=resent), SCOPE, asset=ASSET, key=key("r1"), reason="x")
    assert list_history(store, SCOPE) == [p1] and current_run(store, SCOPE) == p1


def test_crash_between_pointer_and_history_is_repaired(store: Store) -> None:
    _promote_three(store)
    make_manifest(store, ASSET, "r4", as_of="2025-01-15T23:00:00Z")
    make_manifest(store, ASSET, "r5", as_of="2025-01-15T23:30:00Z")

    def crash(key_: str, if_match: str | None) -> None:
        if key_ == history_key(SCOPE, 4):
            raise StoreUnavailable("the writer died after moving the pointer")

    with pytest.raises(StoreUnavailable):
        promote(HookedStore(store, before=crash), SCOPE, asset=ASSET, key=key("r4"), reason="x")
    p4 = current_run(store, SCOPE)
    assert p4 is not None and p4.seq == 4 and not store.exists(history_key(SCOPE, 4))
    p5 = promote(store, SCOPE, asset=ASSET, key=key("r5"), reason="y")
    assert p5.seq == 5 and p5.previous is not None and p5.previous.seq == 4
    assert list_history(store, SCOPE)[3:] == [p4, p5]


def test_pointer_deleted_before_the_cas_is_retried(store: Store) -> None:
    make_manifest(store, ASSET, "r1", as_of="2025-01-15T20:00:00Z")
    make_manifest(store, ASSET, "r2", as_of="2025-01-15T22:00:00Z")
    p1 = promote(store, SCOPE, asset=ASSET, key=key("r1"), reason="first")
    deleted: list[str] = []

    def delete_pointer(key_: str, if_match: str | None) -> None:
        if key_ == pointer_key(SCOPE) and if_match is not None and not deleted:
            store.delete(key_)  # gone between promote's read and its If-Match PUT
            deleted.append(key_)

    p2 = promote(HookedStore(store, before=delete_pointer), SCOPE, asset=ASSET, key=key("r2"), reason="y")
    assert deleted  # the If-Match PUT met a missing key, lost, and promote retried
    assert p2.seq == 2 and p2.previous is not None and p2.previous.run_id == "r1"
    assert list_history(store, SCOPE) == [p1, p2] and current_run(store, SCOPE) == p2


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
    found = read_pointer(store, SCOPE)
    assert found is not None and found[0].seq == total
    for version in history:  # the pointer never named a run without a success manifest
        manifest = read_manifest(store, ASSET, version.key)
        assert manifest is not None and manifest.status == "success"


def test_model_pointer_scope(store: Store) -> None:
    make_manifest(store, "minutes.train", "m1")
    scope = layout.model_pointer_scope("minutes")
    assert promote(store, scope, asset="minutes.train", key=key("m1"), reason="x").scope == "models/minutes/"
    assert store.exists("models/minutes/current_run.json")
    current = current_run(store, scope)
    assert current is not None
    assert store.get_bytes("models/minutes/history/00000001.json") == dumps_json(
        current.model_dump(mode="json")
    )


def test_a_record_is_made_durable_before_a_pointer_names_it(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The directory store publishes manifest records without fsync (a record that lost its
    bytes is refused by its name's digest, and its step runs again); a pointer must not outlive
    the record it names, so promote fsyncs the record before the pointer is written."""
    store = open_store(f"file://{tmp_path / 'store'}", create=True)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    manifest = make_manifest(store, ASSET, "r1", as_of="2025-01-15T20:00:00Z")
    assert synced == []  # the record went out unsynced
    record = str(tmp_path / "store" / record_of(manifest)[0])
    pointer_written_after: list[list[str]] = []
    real_put_if = type(store).put_if

    def put_if(self: Store, key: str, data: bytes, **kw: object) -> str:
        if key == pointer_key(SCOPE):
            pointer_written_after.append(list(synced))
        return real_put_if(self, key, data, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(type(store), "put_if", put_if)
    promote(store, SCOPE, asset=ASSET, key=key("r1"), reason="first")
    assert pointer_written_after and record in pointer_written_after[0]
    with pytest.raises(ObjectNotFound):
        store.persist(["manifests/no/such/record.json"])
