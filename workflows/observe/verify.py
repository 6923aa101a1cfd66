"""`pipeline verify`: recompute a promoted partition in a scratch overlay and compare every
output's content hash with its manifest's, so the repeatability promise is a command.

The overlay reads through to the real store and writes under a scratch prefix, so the
recomputation reads the same landing snapshots and upstream runs as the original did, and
nothing it writes can touch a run, a manifest or a pointer.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from steps.pipeline.finalize import PUBLISHED_ASSET as PUBLISHED  # its pointers name the promoted run
from steps.runtime import layout
from steps.runtime.errors import ObjectNotFound, PipelineError, PreconditionFailed
from steps.runtime.layout import new_attempt_id
from steps.runtime.manifest import Manifest, read_manifest
from steps.runtime.partition import PartitionKey, month_of
from steps.runtime.pointer import Pointer, current_run
from steps.runtime.step import execute
from steps.runtime.store import ObjectInfo, Store, content_hash
from steps.runtime.timefmt import to_key_ts, utc_now
from workflows.dag.graph import Graph

NOT_RECOMPUTED = ("promote",)  # moves pointers: what it did is in the pointer history


class ScratchOverlay(Store):
    """Reads the scratch layer first, then the real store; writes only to the scratch layer."""

    def __init__(self, base: Store, prefix: str) -> None:
        self.base, self.prefix, self.url = base, prefix, base.url

    def _mine(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def put_bytes(self, key: str, data: bytes) -> str:
        return self.base.put_bytes(self._mine(key), data)

    def put_if(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        if if_none_match and self.base.exists(key):
            raise PreconditionFailed(f"{self.base.describe(key)} already exists")
        return self.base.put_if(self._mine(key), data, if_match=if_match, if_none_match=if_none_match)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.base.get_bytes(self._mine(key))
        except ObjectNotFound:
            return self.base.get_bytes(key)

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        try:
            return self.base.get_with_etag(self._mine(key))
        except ObjectNotFound:
            return self.base.get_with_etag(key)

    def stat(self, key: str) -> ObjectInfo | None:
        return self.base.stat(self._mine(key)) or self.base.stat(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        merged = {i.key: i for i in self.base.list(prefix)}
        for info in self.base.list(self._mine(prefix)):
            merged[info.key.removeprefix(self.prefix)] = ObjectInfo(
                info.key.removeprefix(self.prefix), info.size, info.etag
            )
        yield from (merged[k] for k in sorted(merged))

    def list_dirs(self, prefix: str) -> builtins.list[str]:
        mine = [d.removeprefix(self.prefix) for d in self.base.list_dirs(self._mine(prefix))]
        return sorted({*self.base.list_dirs(prefix), *mine})

    def delete(self, key: str) -> None:
        self.base.delete(self._mine(key))

    def clear(self) -> int:
        keys = [i.key for i in self.base.list(self.prefix)]
        for key in keys:
            self.base.delete(key)
        return len(keys)


@dataclass(frozen=True)
class Finding:
    """One output of one step partition: `same`, or what differs."""

    step: str
    partition: str
    output: str
    verdict: str  # same | recomputed-differs | stored-differs | missing | step-failed
    detail: str = ""


def promoted_pointers(store: Store, game_date: date, draft_group: str | None = None) -> list[Pointer]:
    scope = PartitionKey(game_date=game_date)
    folders = (layout.parse_pointer_scope(d) for d in store.list_dirs(layout.pointer_scope(PUBLISHED, scope)))
    groups = [f[1].draft_group_id for f in folders if f is not None and f[1].draft_group_id is not None]
    found = []
    for group in sorted(groups):
        if draft_group is None or group == draft_group:
            pointer = current_run(
                store, layout.pointer_scope(PUBLISHED, scope.model_copy(update={"draft_group_id": group}))
            )
            if pointer is not None:
                found.append(pointer)
    return found


def partitions_to_verify(
    store: Store, graph: Graph, game_date: date, asset: str | None, draft_group: str | None
) -> list[Manifest]:
    """The success manifests of the promoted run(s) of a date, in graph order."""
    pointers = promoted_pointers(store, game_date, draft_group)
    if not pointers:
        where = f"{game_date}" + (f" / draft group {draft_group}" if draft_group else "")
        raise PipelineError(f"nothing promoted for {where}: no current pointer of {PUBLISHED}")
    if asset is not None and asset not in graph.specs:
        raise PipelineError(f"unknown step {asset!r}; known steps: {', '.join(graph.order)}")
    found: list[Manifest] = []
    for name in graph.order:
        spec = graph.specs[name]
        if (asset is not None and name != asset) or name in NOT_RECOMPUTED or not spec.shape.run_scoped:
            continue
        keys: list[PartitionKey] = []
        for run_id in sorted({p.run_id for p in pointers}):
            if spec.shape.name == "month":
                keys.append(PartitionKey(month=month_of(game_date), run_id=run_id))
            elif spec.shape.name == "draft_group":
                keys += [p.key for p in pointers if p.run_id == run_id]
            else:
                keys.append(PartitionKey(game_date=game_date, run_id=run_id))
        for key in dict.fromkeys(keys):
            manifest = read_manifest(store, name, key)
            if manifest is not None and manifest.status == "success":
                found.append(manifest)
    if asset is not None and not found:
        raise PipelineError(f"{asset} has no success manifest in the promoted run of {game_date}")
    return found


def verify_partition(
    store: Store, graph: Graph, original: Manifest, overlay: ScratchOverlay
) -> list[Finding]:
    """Check the stored outputs against the manifest, then recompute and compare."""
    where = original.key.describe()
    findings: dict[str, Finding] = {}
    for out in original.outputs:
        try:
            stored = content_hash(store.get_bytes(out.path))
        except ObjectNotFound:
            findings[out.name] = Finding(original.asset, where, out.name, "missing", f"{out.path} is gone")
            continue
        if stored != out.content_hash:
            findings[out.name] = Finding(
                original.asset,
                where,
                out.name,
                "stored-differs",
                f"{out.path} hashes to {stored}, its manifest says {out.content_hash}",
            )
    again = execute(
        graph.specs[original.asset],
        original.partition,
        overlay,
        correlation_id=f"verify-{original.correlation_id}",
        attempt_id=new_attempt_id(),
        reason=f"pipeline verify of attempt {original.attempt_id}",
    )
    if again.status != "success":
        message = again.error.message if again.error else again.status
        return [*findings.values(), Finding(original.asset, where, "*", "step-failed", message)]
    recomputed = {o.name: o for o in again.outputs}
    for out in original.outputs:
        new = recomputed.get(out.name)
        if new is None:
            findings.setdefault(
                out.name, Finding(original.asset, where, out.name, "missing", "not recomputed")
            )
        elif new.content_hash != out.content_hash:
            findings[out.name] = Finding(
                original.asset,
                where,
                out.name,
                "recomputed-differs",
                f"recomputed {new.content_hash}, manifest says {out.content_hash}; {_input_drift(original, again)}",
            )
        else:
            findings.setdefault(out.name, Finding(original.asset, where, out.name, "same"))
    return list(findings.values())


def _input_drift(original: Manifest, again: Manifest) -> str:
    """Which inputs the recomputation read differently (by content, not by path)."""
    before = {i.name: (i.run_id, i.content_hash, i.snapshot_ts) for i in original.inputs}
    after = {i.name: (i.run_id, i.content_hash, i.snapshot_ts) for i in again.inputs}
    changed = sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))
    return f"inputs read differently: {', '.join(changed)}" if changed else "the same inputs"


def verify(
    store: Store,
    graph: Graph,
    game_date: date,
    *,
    asset: str | None = None,
    draft_group: str | None = None,
    keep_scratch: bool = False,
) -> tuple[list[Finding], str]:
    """Every finding, and the scratch prefix used (removed unless `keep_scratch`)."""
    manifests = partitions_to_verify(store, graph, game_date, asset, draft_group)
    overlay = ScratchOverlay(
        store, layout.scratch_prefix(f"verify-{to_key_ts(utc_now())}-{new_attempt_id()[-6:]}")
    )
    try:
        findings = [f for m in manifests for f in verify_partition(store, graph, m, overlay)]
    finally:
        if not keep_scratch:
            overlay.clear()
    return findings, overlay.prefix
