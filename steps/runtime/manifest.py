"""Manifest v1: what a step read, wrote, checked, how long it took, and how it ended.

A manifest is written last. A success manifest is what makes a run's outputs valid: readers
and the promote step trust nothing that a success manifest does not name.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from steps.runtime import layout
from steps.runtime.errors import CorruptObject, ManifestError, ObjectNotFound
from steps.runtime.partition import Partition, PartitionKey, describe_validation_error
from steps.runtime.store import Store, content_hash, dumps_json, parquet_to_frame

Status = Literal["success", "failed", "skipped"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputRecord(_Strict):
    name: str
    path: str
    kind: Literal["source", "asset", "model", "file"] = "asset"
    run_id: str | None = None
    snapshot_ts: str | None = None
    pointer_hash: str | None = None
    row_count: int | None = None
    file_count: int | None = None
    size_bytes: int | None = None
    mtime: str | None = None


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
    severity: Literal["critical", "warn"] = "critical"


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
    store.put_bytes(key, body)
    return key


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
        if info.key.endswith("/manifest.json"):
            out.append(parse_manifest(store.get_bytes(info.key), store.describe(info.key)))
    return out
