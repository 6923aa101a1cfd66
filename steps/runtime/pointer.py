"""Atomic "current" pointers: compare-and-swap on one small JSON object, with full history.

Protocol (the same on both backends; Iceberg's metadata-pointer commit is the model):
1. Read the pointer and its ETag. If its own history entry is missing (a writer crashed
   between steps 4 and 5), write it first, so every version that was ever current is kept.
2. Refuse a run that has no success manifest.
3. Refuse to move back in time: a candidate whose `run_as_of_ts` is older than the current
   one's needs `force` (a late backfill must not clobber a newer daily run).
4. Conditional PUT of the new pointer (`If-Match` the ETag read, or `If-None-Match: *` for
   the first version). A lost race re-reads and retries from 1; nothing is overwritten blind.
5. Write `history/<seq>.json` create-only. Its content is the pointer itself, so a retry
   writes the same bytes.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import random
import time
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from steps.runtime import layout
from steps.runtime.errors import ObjectNotFound, PointerRefused, PreconditionFailed
from steps.runtime.manifest import require_success
from steps.runtime.partition import PartitionKey
from steps.runtime.store import Store, dumps_json
from steps.runtime.timefmt import iso_utc, utc_now


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


def pointer_key(scope: str) -> str:
    return f"{scope}{layout.POINTER_FILE}"


def history_key(scope: str, seq: int) -> str:
    return f"{scope}history/{seq:08d}.json"


def default_actor() -> str:
    return os.environ.get("PIPELINE_ACTOR") or f"{getpass.getuser()}@{os.uname().nodename}"


def read_pointer(store: Store, scope: str) -> tuple[Pointer, str] | None:
    try:
        data, etag = store.get_with_etag(pointer_key(scope))
    except ObjectNotFound:
        return None
    return Pointer.model_validate_json(data), etag


def current_run(store: Store, scope: str) -> Pointer | None:
    found = read_pointer(store, scope)
    return found[0] if found else None


def _record_history(store: Store, pointer: Pointer) -> None:
    # Create-only; if it exists it was recorded already (a retry, or the repair in step 1).
    with contextlib.suppress(PreconditionFailed):
        store.put_if(
            history_key(pointer.scope, pointer.seq),
            dumps_json(pointer.model_dump(mode="json")),
            if_none_match=True,
        )


def list_history(store: Store, scope: str) -> list[Pointer]:
    out = []
    for info in store.list(f"{scope}history/"):
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
    manifest_path = layout.manifest_key(asset, key)
    actor = promoted_by or default_actor()
    for attempt in range(max_attempts):
        found = read_pointer(store, scope)
        current, etag = found if found else (None, None)
        if current is not None:
            _record_history(store, current)
            if current.run_id == key.run_id and current.asset == asset:
                return current
            if manifest.partition.run_as_of_ts < current.run_as_of_ts and not force:
                raise PointerRefused(
                    f"refusing to move {pointer_key(scope)} back in time: run {key.run_id} is "
                    f"as of {iso_utc(manifest.partition.run_as_of_ts)}, the current run "
                    f"{current.run_id} is as of {iso_utc(current.run_as_of_ts)} "
                    "(use force to override, e.g. for a rollback)"
                )
        new = Pointer(
            scope=scope,
            asset=asset,
            game_date=key.game_date,
            draft_group_id=key.draft_group_id,
            run_id=key.run_id,
            manifest_path=manifest_path,
            run_as_of_ts=manifest.partition.run_as_of_ts,
            seq=(current.seq + 1) if current else 1,
            promoted_at=utc_now(),
            promoted_by=actor,
            reason=reason,
            correlation_id=correlation_id,
            previous=(
                PreviousVersion(seq=current.seq, run_id=current.run_id, run_as_of_ts=current.run_as_of_ts)
                if current
                else None
            ),
        )
        body = dumps_json(new.model_dump(mode="json"))
        try:
            if etag is None:
                store.put_if(pointer_key(scope), body, if_none_match=True)
            else:
                store.put_if(pointer_key(scope), body, if_match=etag)
        except PreconditionFailed:
            time.sleep(random.uniform(0.005, 0.05) * (1 + attempt))
            continue
        _record_history(store, new)
        return new
    raise PointerRefused(f"gave up updating {pointer_key(scope)} after {max_attempts} lost races")


def rollback(
    store: Store, scope: str, *, to_seq: int, reason: str, promoted_by: str | None = None
) -> Pointer:
    """Make an older version current again: a new version that names the old run."""
    try:
        old = Pointer.model_validate_json(store.get_bytes(history_key(scope, to_seq)))
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
