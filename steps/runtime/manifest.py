"""Manifest v1: what a step read, wrote, checked, how long it took, and how it ended.

A manifest is written last. A success manifest is what makes a run's outputs valid: readers
and the promote step trust nothing that a success manifest does not name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, get_args

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from steps.runtime import layout
from steps.runtime.errors import CorruptObject, ManifestError, ObjectNotFound, StoreError
from steps.runtime.partition import Partition, PartitionKey, describe_validation_error
from steps.runtime.store import ObjectInfo, Store, content_hash, dumps_json, parquet_to_frame

Severity = Literal["critical", "warn"]  # critical fails the step (and so blocks promote); warn is recorded
# How a step partition ended (docs/decisions.md D21). The last two end it cleanly, exit 0 and
# without outputs, and hold back what reads it on both runners:
# - not_due: what it reads has not settled yet (labels before the slate settles); a later run does it.
# - not_promoted: promote left the current pointer where it was (a run with a newer as-of is
#   current). A health gate that says no is a failure, never this.
Status = Literal["success", "failed", "not_due", "not_promoted"]
STATUSES: tuple[Status, ...] = get_args(Status)
STOPPED_SHORT: tuple[Status, ...] = ("not_due", "not_promoted")
# The one word manifests and marks used for both before D21, and how promote's reason began.
LEGACY_SKIPPED = "skipped"
_LEGACY_NOT_PROMOTED = "not promoted:"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputRecord(_Strict):
    name: str
    path: str
    kind: Literal["source", "asset", "model", "file"] = "asset"
    run_id: str | None = None
    snapshot_ts: str | None = None
    content_hash: str | None = None  # of the output read, as its manifest recorded it
    row_count: int | None = None
    file_count: int | None = None
    size_bytes: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _earlier_names(cls, data: Any) -> Any:
        """Manifests written before the rename still read: `pointer_hash` held this content
        hash, and `mtime` was never set."""
        if isinstance(data, dict) and ("pointer_hash" in data or "mtime" in data):
            data = {k: v for k, v in data.items() if k != "mtime" or v is not None}
            if "pointer_hash" in data:
                data["content_hash"] = data.pop("pointer_hash")
        return data


class OutputRecord(_Strict):
    name: str
    path: str
    row_count: int
    content_hash: str
    null_counts: dict[str, int] | None = None
    min_max: dict[str, list[Any]] | None = None
    unique_checks: dict[str, bool] | None = None


class CheckRecord(_Strict):
    name: str
    passed: bool
    detail: str = ""
    severity: Severity = "critical"


class GapRecord(_Strict):
    source: str
    policy: Literal["fail", "proceed"]
    detail: str


class ErrorRecord(_Strict):
    type: str
    message: str
    traceback_snippet: str = ""
    # False when the same inputs fail the same way (steps.runtime.errors.Deterministic).
    retryable: bool = True


class Timing(_Strict):
    started_at: datetime
    finished_at: datetime
    duration_s: float


class EnvironmentRecord(_Strict):
    git_sha: str | None = None
    code_version: str
    hostname: str
    python: str
    orchestrator_run_id: str | None = None


class Manifest(_Strict):
    manifest_version: Literal["v1"] = "v1"
    asset: str
    partition: Partition
    status: Status
    timing: Timing
    inputs: list[InputRecord] = Field(default_factory=list)
    outputs: list[OutputRecord] = Field(default_factory=list)
    checks: list[CheckRecord] = Field(default_factory=list)
    gaps: list[GapRecord] = Field(default_factory=list)
    error: ErrorRecord | None = None
    environment: EnvironmentRecord
    correlation_id: str
    # Key figures (rows, coverage, MAE ...) surfaced in summaries and as Argo outputs.
    metrics: dict[str, float] = Field(default_factory=dict)
    attempt: int = 1  # the orchestrator's retry number
    # Which execution wrote it: its outputs lie under the attempt's own prefix.
    attempt_id: str | None = None
    reason: str | None = None  # why this run was made (`--reason`, e.g. a backfill's)

    @model_validator(mode="before")
    @classmethod
    def _legacy_skipped(cls, data: Any) -> Any:
        """Manifests written before D21 still read: their `skipped` is `not_promoted` when
        promote wrote it (its `not_due` check said "not promoted: ..."), else `not_due`."""
        if not isinstance(data, dict) or data.get("status") != LEGACY_SKIPPED:
            return data
        checks = [dict(c) if isinstance(c, dict) else c for c in data.get("checks") or []]
        status = "not_due"
        for check in checks:
            named = isinstance(check, dict) and check.get("name") == "not_due"
            if named and str(check.get("detail", "")).startswith(_LEGACY_NOT_PROMOTED):
                status = check["name"] = "not_promoted"
        return {**data, "status": status, "checks": checks}

    @property
    def key(self) -> PartitionKey:
        return self.partition.key

    def output(self, name: str) -> OutputRecord:
        for out in self.outputs:
            if out.name == name:
                return out
        raise ManifestError(f"manifest of {self.asset} {self.key.segments()} has no output {name!r}")


def write_manifest(store: Store, manifest: Manifest) -> str:
    """The attempt's own record (create-only), then the run's latest-attempt manifest."""
    body = dumps_json(manifest.model_dump(mode="json"))
    if manifest.attempt_id is not None:
        store.put_if(
            layout.attempt_manifest_key(manifest.asset, manifest.key, manifest.attempt_id),
            body,
            if_none_match=True,
        )
    key = layout.manifest_key(manifest.asset, manifest.key)
    etag = store.put_bytes(key, body)
    _mark(store, manifest, etag)
    return key


def partition_identity(partition: Partition) -> str:
    """A digest of every field of a partition: two partitions share it only when they are the
    same partition (the fields `Partition.differences` compares)."""
    text = json.dumps(partition.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _mark(store: Store, manifest: Manifest, etag: str) -> None:
    """Written after manifest.json, so a crash between the two leaves a manifest that resume
    reads, never a mark without its manifest."""
    mark = layout.ManifestMark(
        status=manifest.status,
        identity=partition_identity(manifest.partition),
        etag=etag,
        error=manifest.error.type if manifest.error else "",
        attempt=manifest.attempt_id or "",
    )
    key = layout.manifest_mark_key(manifest.asset, manifest.key, mark)
    if key is None:
        return
    # The manifest is the record; a mark the store refused costs one read when planning.
    with contextlib.suppress(StoreError):
        store.put_bytes(key, b"")


def latest_marks(listing: Iterable[ObjectInfo]) -> dict[str, layout.ManifestMark | None]:
    """From a listing of manifests/: every run prefix that holds a manifest.json, with the mark
    that speaks for it (the one naming its ETag), or None when none does (a crash between the
    two writes, a manifest written before marks, or one overwritten since): read that one. A
    mark written before D21 says `skipped`, which does not tell not_due from not_promoted: the
    manifest is read instead, and says which."""
    etags: dict[str, str] = {}
    marks: dict[str, dict[str, layout.ManifestMark]] = {}
    for info in listing:
        parsed = layout.parse_manifest_listing(info.key)
        if parsed is None:
            continue
        run, mark = parsed
        if mark is None:
            etags[run] = info.etag
        elif mark.status != LEGACY_SKIPPED:
            marks.setdefault(run, {})[mark.etag] = mark
    return {run: marks.get(run, {}).get(etag) if etag else None for run, etag in etags.items()}


def read_output(store: Store, record: OutputRecord) -> bytes:
    """An output's bytes, refused unless they hash to what its manifest recorded."""
    data = store.get_bytes(record.path)
    found = content_hash(data)
    if found != record.content_hash:
        raise CorruptObject(
            f"{store.describe(record.path)} does not match its manifest: content hash {found}, "
            f"manifest says {record.content_hash} (the object was changed after it was written)"
        )
    return data


def read_output_frame(store: Store, record: OutputRecord) -> pd.DataFrame:
    data = read_output(store, record)
    try:
        return parquet_to_frame(data)
    except (pa.ArrowException, OSError) as exc:
        raise CorruptObject(f"{store.describe(record.path)} is not readable parquet: {exc}") from None


def parse_manifest(data: bytes, where: str) -> Manifest:
    try:
        return Manifest.model_validate(json.loads(data))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest {where} is corrupt (not JSON: {exc})") from None
    except ValidationError as exc:
        raise ManifestError(f"manifest {where} does not validate: {describe_validation_error(exc)}") from None


def read_manifest(store: Store, asset: str, key: PartitionKey) -> Manifest | None:
    """The manifest for (asset, partition), validated; None when there is none."""
    mkey = layout.manifest_key(asset, key)
    try:
        data = store.get_bytes(mkey)
    except ObjectNotFound:
        return None
    return parse_manifest(data, store.describe(mkey))


def require_success(store: Store, asset: str, key: PartitionKey) -> Manifest:
    manifest = read_manifest(store, asset, key)
    where = store.describe(layout.manifest_key(asset, key))
    if manifest is None:
        raise ManifestError(f"no manifest for {asset} at {where}")
    if manifest.status != "success":
        raise ManifestError(f"manifest {where} has status {manifest.status!r}, not success")
    return manifest


def list_manifests(store: Store, prefix: str) -> list[Manifest]:
    """Every manifest under a prefix (one paginated listing), e.g. every run of a partition."""
    out = []
    for info in store.list(prefix):
        if layout.parse_manifest_key(info.key) is not None:
            out.append(parse_manifest(store.get_bytes(info.key), store.describe(info.key)))
    return out
