"""Atomic "current" pointers: compare-and-swap on one small JSON object, with full history.

Protocol (the same on both backends; Iceberg's metadata-pointer commit is the model):
1. Read the pointer and its ETag. If its own history entry is missing (a writer crashed
   between steps 4 and 5), write it first, so every version that was ever current is kept.
   With no pointer (the first version, or the pointer object was lost), list `history/` once
   to find the newest entry instead (step 4 numbers after it; step 3 needs a pointer).
2. Refuse a run that has no success manifest.
3. Refuse to move back in time: a candidate whose `run_as_of_ts` is older than the current
   one's needs `force` (a late backfill must not clobber a newer daily run).
4. Conditional PUT of the new pointer (`If-Match` the ETag read, or `If-None-Match: *` when
   there is none). Its `seq` is one past both the pointer's and the newest history entry's:
   `current.seq + 1` once its history slot is checked free, else (no pointer, or a pointer
   behind its history) one past the newest entry, which `previous` then names if there is no
   pointer. A lost race (or a pointer deleted meanwhile) re-reads and retries from 1; nothing
   is overwritten blind, and a version number is never reused.
5. Write `history/<seq>.json` create-only. Its content is the pointer itself, so a retry
   writes the same bytes; a slot already holding a different version is a forked history
   and is refused (DivergentHistory, a PointerRefused naming the slot), never silently kept.
"""

from __future__ import annotations

import getpass
import os
import random
import time
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from steps.runtime import layout
from steps.runtime.errors import ObjectNotFound, PointerContended, PointerRefused, PreconditionFailed
from steps.runtime.manifest import Manifest, read_record, record_of, require_success
from steps.runtime.partition import PartitionKey
from steps.runtime.store import Store, dumps_json
from steps.runtime.timefmt import iso_utc, utc_now


class DivergentHistory(PointerRefused):
    """Two different versions claim one history slot: the lineage forked (never overwritten)."""


class PreviousVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int
    run_id: str
    run_as_of_ts: datetime


class Pointer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pointer_version: Literal["v1"] = "v1"
    scope: str
    asset: str
    game_date: date
    draft_group_id: str | None = None
    run_id: str
    attempt_id: str | None = None  # the attempt of the run that was promoted
    manifest_path: str
    run_as_of_ts: datetime
    seq: int
    promoted_at: datetime
    promoted_by: str
    reason: str
    correlation_id: str | None = None
    previous: PreviousVersion | None = None

    @property
    def key(self) -> PartitionKey:
        return PartitionKey(game_date=self.game_date, draft_group_id=self.draft_group_id, run_id=self.run_id)


def default_actor() -> str:
    return os.environ.get("PIPELINE_ACTOR") or f"{getpass.getuser()}@{os.uname().nodename}"


def read_pointer(store: Store, scope: str) -> tuple[Pointer, str] | None:
    try:
        data, etag = store.get_with_etag(layout.pointer_key(scope))
    except ObjectNotFound:
        return None
    return Pointer.model_validate_json(data), etag


def pointed_manifest(store: Store, pointer: Pointer) -> Manifest | None:
    """The manifest of the attempt a pointer names (None when it is gone)."""
    try:
        return read_record(store, pointer.manifest_path)
    except ObjectNotFound:
        return None


def current_run(store: Store, scope: str) -> Pointer | None:
    found = read_pointer(store, scope)
    return found[0] if found else None


def _describe_version(pointer: Pointer) -> str:
    return (
        f"version {pointer.seq}: run {pointer.run_id} of {pointer.asset}, promoted "
        f"{iso_utc(pointer.promoted_at)} by {pointer.promoted_by} ({pointer.reason!r})"
    )


def _check_same(store: Store, scope: str, pointer: Pointer, existing: bytes) -> None:
    """An occupied history slot is fine only if it records this very version (a retry)."""
    slot = layout.history_key(scope, pointer.seq)
    try:
        recorded: Pointer | None = Pointer.model_validate_json(existing)
    except ValueError:
        recorded = None
    if recorded == pointer:
        return
    held = _describe_version(recorded) if recorded else "something that is not a pointer version"
    raise DivergentHistory(
        f"divergent pointer history: {store.describe(slot)} already holds {held}, but "
        f"{layout.pointer_key(scope)} is {_describe_version(pointer)}. Two lineages claim the same "
        "version (a promote restarted the numbering after the pointer was lost, or the pointer "
        "was put back by hand); the recorded entry was not overwritten. Decide which lineage "
        "is right, move the other one's entries out of history/, then promote again."
    )


def _record_history(store: Store, scope: str, pointer: Pointer, *, expect_recorded: bool = False) -> None:
    """Write `pointer` to its history slot, create-only (steps 1 and 5).

    An existing identical entry (a retry, or the repair in step 1) is fine; an existing
    different one raises PointerRefused. `expect_recorded` reads before writing, the cheaper
    order when the slot is normally there already (step 1).
    """
    slot = layout.history_key(scope, pointer.seq)
    if expect_recorded:
        try:
            _check_same(store, scope, pointer, store.get_bytes(slot))
            return
        except ObjectNotFound:
            pass  # a writer died between steps 4 and 5: repair
    try:
        store.put_if(slot, dumps_json(pointer.model_dump(mode="json")), if_none_match=True)
    except PreconditionFailed:
        _check_same(store, scope, pointer, store.get_bytes(slot))


def _newest_history(store: Store, scope: str) -> Pointer | None:
    """The newest recorded version: one listing of `history/`, then one read."""
    newest: tuple[int, str] | None = None
    for info in store.list(layout.history_prefix(scope)):
        found = layout.parse_history_key(info.key)
        if found is not None and found[0] == scope and (newest is None or found[1] > newest[0]):
            newest = (found[1], info.key)
    if newest is None:
        return None
    seq, slot = newest
    version = Pointer.model_validate_json(store.get_bytes(slot))
    if version.seq != seq:
        raise DivergentHistory(
            f"corrupt pointer history: {store.describe(slot)} records version {version.seq}, not {seq}"
        )
    return version


def list_history(store: Store, scope: str) -> list[Pointer]:
    out = []
    for info in store.list(layout.history_prefix(scope)):
        out.append(Pointer.model_validate_json(store.get_bytes(info.key)))
    return sorted(out, key=lambda p: p.seq)


def promote(
    store: Store,
    scope: str,
    *,
    asset: str,
    key: PartitionKey,
    reason: str,
    promoted_by: str | None = None,
    correlation_id: str | None = None,
    force: bool = False,
    max_attempts: int = 50,
) -> Pointer:
    """Point `scope` at (asset, key). Idempotent when it already points there."""
    if key.game_date is None or key.run_id is None:
        raise PointerRefused(f"only a run of a dated partition can be current, not {key.segments()}")
    manifest = require_success(store, asset, key)
    # The attempt's own manifest, which no later attempt of the run rewrites: a `--force`
    # rerun of a promoted run never changes what is current.
    manifest_path = record_of(manifest)[0]
    store.persist([manifest_path])  # what the pointer names must outlive a power cut as it does
    actor = promoted_by or default_actor()
    for attempt in range(max_attempts):
        found = read_pointer(store, scope)
        current, etag = found if found else (None, None)
        if current is not None:
            _record_history(store, scope, current, expect_recorded=True)
            if current.run_id == key.run_id and current.asset == asset:
                return current
            if manifest.partition.run_as_of_ts < current.run_as_of_ts and not force:
                raise PointerRefused(
                    f"refusing to move {layout.pointer_key(scope)} back in time: run {key.run_id} is "
                    f"as of {iso_utc(manifest.partition.run_as_of_ts)}, the current run "
                    f"{current.run_id} is as of {iso_utc(current.run_as_of_ts)} "
                    "(use force to override, e.g. for a rollback)"
                )
        previous, seq = _next_version(store, scope, current)
        new = Pointer(
            scope=scope,
            asset=asset,
            game_date=key.game_date,
            draft_group_id=key.draft_group_id,
            run_id=key.run_id,
            attempt_id=manifest.attempt_id,
            manifest_path=manifest_path,
            run_as_of_ts=manifest.partition.run_as_of_ts,
            seq=seq,
            promoted_at=utc_now(),
            promoted_by=actor,
            reason=reason,
            correlation_id=correlation_id,
            previous=_previous_version(previous),
        )
        if _swap(store, scope, new, etag):
            _record_history(store, scope, new)
            return new
        time.sleep(random.uniform(0.005, 0.05) * (1 + attempt))
    raise PointerContended(f"gave up updating {layout.pointer_key(scope)} after {max_attempts} lost races")


def _next_version(store: Store, scope: str, current: Pointer | None) -> tuple[Pointer | None, int]:
    """The version a new pointer follows, and its number: one past the current pointer, and
    never a number whose history slot is taken."""
    if current is None:
        # No pointer: the first version, or the pointer object was lost. Continue the
        # recorded lineage rather than restart it at 1.
        newest = _newest_history(store, scope)
        return newest, newest.seq + 1 if newest else 1
    seq = current.seq + 1
    if store.exists(layout.history_key(scope, seq)):
        # Someone moved the pointer since we read it (the swap will lose), or the pointer is
        # behind its history (restored from an older copy): never reuse a slot.
        newest = _newest_history(store, scope)
        seq = max(seq, newest.seq + 1 if newest else 1)
    return current, seq


def _previous_version(previous: Pointer | None) -> PreviousVersion | None:
    if previous is None:
        return None
    return PreviousVersion(seq=previous.seq, run_id=previous.run_id, run_as_of_ts=previous.run_as_of_ts)


def _swap(store: Store, scope: str, new: Pointer, etag: str | None) -> bool:
    """Compare-and-swap the pointer object: False when someone else moved it first."""
    body = dumps_json(new.model_dump(mode="json"))
    try:
        if etag is None:
            store.put_if(layout.pointer_key(scope), body, if_none_match=True)
        else:
            store.put_if(layout.pointer_key(scope), body, if_match=etag)
    except PreconditionFailed:
        return False
    return True


def rollback(
    store: Store, scope: str, *, to_seq: int, reason: str, promoted_by: str | None = None
) -> Pointer:
    """Make an older version current again: a new version that names the old run."""
    try:
        old = Pointer.model_validate_json(store.get_bytes(layout.history_key(scope, to_seq)))
    except ObjectNotFound:
        raise PointerRefused(f"{scope} has no history version {to_seq}") from None
    return promote(
        store,
        scope,
        asset=old.asset,
        key=old.key,
        reason=f"rollback to version {to_seq}: {reason}",
        promoted_by=promoted_by,
        force=True,
    )
