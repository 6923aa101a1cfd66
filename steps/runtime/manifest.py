"""Manifest v1: what a step read, wrote, checked, how long it took, and how it ended.

A manifest is written last. A success manifest is what makes a run's outputs valid: readers
and the promote step trust nothing that a success manifest does not name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from steps.runtime import layout
from steps.runtime.errors import CorruptObject, ManifestError, ObjectNotFound, PreconditionFailed
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
# The one word manifests (and their marks, D19) used for both before D21, and how promote's reason began.
LEGACY_SKIPPED = "skipped"
_LEGACY_NOT_PROMOTED = "not promoted:"
# The attempt folder of a record written before manifests named their attempt.
LEGACY_ATTEMPT = "legacy"


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
    # A fan-out source's draft groups, also carried in its record's name (D22) so that a
    # plan knows them from a listing.
    draft_groups: list[str] = Field(default_factory=list)

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


def record_of(manifest: Manifest) -> tuple[str, bytes]:
    """The key and bytes of an attempt's record: both follow from the manifest alone, so a
    pointer or a summary names the record without listing for it."""
    body = dumps_json(manifest.model_dump(mode="json"))
    name = layout.RecordName(
        written=layout.record_written(manifest.timing.finished_at),
        status=manifest.status,
        identity=partition_identity(manifest.partition),
        digest=hashlib.md5(body, usedforsecurity=False).hexdigest(),
        error=manifest.error.type if manifest.error else "",
        groups=tuple(manifest.draft_groups),
    )
    attempt = manifest.attempt_id or LEGACY_ATTEMPT
    return layout.record_key(manifest.asset, manifest.key, attempt, name), body


def write_manifest(store: Store, manifest: Manifest) -> str:
    """The attempt's record, create-only: the only write a manifest costs (D22). An attempt
    writes one record: an id used twice (never by the runners, which make a new one for each
    execution) is refused, as the second execution's outputs already were."""
    key, body = record_of(manifest)
    attempt = manifest.attempt_id or LEGACY_ATTEMPT
    mine = layout.attempt_record_prefix(manifest.asset, manifest.key, attempt)
    if any(layout.parse_record_key(i.key) for i in store.list(mine)):
        raise PreconditionFailed(f"attempt {attempt} already exists: it wrote {store.describe(mine)}...")
    store.put_if(key, body, if_none_match=True)
    return key


def partition_identity(partition: Partition) -> str:
    """A digest of every field of a partition: two partitions share it only when they are the
    same partition (the fields `Partition.differences` compares)."""
    text = json.dumps(partition.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Listed:
    """A run's latest record as a listing showed it."""

    key: str
    name: layout.RecordName
    etag: str
    attempt: str

    @property
    def vouched(self) -> bool:
        """Whether the name may be believed without a read: the bytes are those it was named for."""
        return self.etag.strip('"') == self.name.digest

    @property
    def run(self) -> layout.RunRef | None:
        """The run the key names, its partition checked (None: not a record's key after all)."""
        parsed = layout.parse_record_key(self.key)
        return parsed[0] if parsed is not None else None


def latest_records(listing: Iterable[ObjectInfo]) -> dict[str, Listed]:
    """From a listing under manifests/: each run's latest record, by run prefix."""
    latest: dict[str, Listed] = {}
    for info in listing:
        split = layout.split_record_key(info.key)
        if split is None:
            continue
        prefix, attempt, name = split
        found = latest.get(prefix)
        if found is None or (name.written, info.key) > (found.name.written, found.key):
            latest[prefix] = Listed(info.key, name, info.etag, attempt)
    return latest


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


def read_record(store: Store, key: str) -> Manifest:
    """One attempt's record, refused when its bytes are not those its name was given for."""
    data = store.get_bytes(key)
    parsed = layout.parse_record_key(key)
    if parsed is not None and hashlib.md5(data, usedforsecurity=False).hexdigest() != parsed[1].digest:
        raise ManifestError(f"manifest {store.describe(key)} was changed after it was written")
    return parse_manifest(data, store.describe(key))


def latest_record(store: Store, asset: str, key: PartitionKey) -> Listed | None:
    """The run's latest attempt's record, from one listing of the run."""
    return latest_records(store.list(layout.manifest_run_prefix(asset, key))).get(
        layout.manifest_run_prefix(asset, key)
    )


def read_manifest(store: Store, asset: str, key: PartitionKey) -> Manifest | None:
    """The latest manifest for (asset, partition), validated; None when there is none."""
    found = latest_record(store, asset, key)
    if found is None:
        return None
    try:
        return read_record(store, found.key)
    except ObjectNotFound:
        return None


def require_success(store: Store, asset: str, key: PartitionKey) -> Manifest:
    manifest = read_manifest(store, asset, key)
    where = store.describe(layout.manifest_run_prefix(asset, key))
    if manifest is None:
        raise ManifestError(f"no manifest for {asset} at {where}")
    if manifest.status != "success":
        raise ManifestError(f"the latest manifest at {where} has status {manifest.status!r}, not success")
    return manifest


def list_manifests(store: Store, prefix: str) -> list[Manifest]:
    """Each run's latest manifest under a prefix (one paginated listing), e.g. every run of a
    partition."""
    return [read_record(store, found.key) for found in latest_records(store.list(prefix)).values()]
