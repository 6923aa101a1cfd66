"""Every key the pipeline reads or writes is built here, and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from steps.runtime.partition import PartitionKey, check_token
from steps.runtime.timefmt import to_key_ts

POINTER_FILE = "current_run.json"


def _d(game_date: date) -> str:
    return f"game_date={game_date.isoformat()}"


def landing_source_prefix(source: str) -> str:
    return f"landing/{check_token(source, 'source')}/"


def landing_date_prefix(source: str, game_date: date) -> str:
    return f"{landing_source_prefix(source)}{_d(game_date)}/"


def landing_snapshot_prefix(source: str, game_date: date, snapshot_ts: datetime) -> str:
    return f"{landing_date_prefix(source, game_date)}snapshot_ts={to_key_ts(snapshot_ts)}/"


def run_prefix(asset: str, key: PartitionKey) -> str:
    return f"runs/{check_token(asset, 'asset')}/{key.segments()}/"


def attempt_prefix(asset: str, key: PartitionKey, attempt_id: str) -> str:
    """Where one attempt of a run writes its outputs: create-only, so a rerun (`--force`,
    `--no-resume`) writes beside an earlier attempt and never over it."""
    return f"{run_prefix(asset, key)}attempt={check_token(attempt_id, 'attempt_id')}/"


def manifest_key(asset: str, key: PartitionKey) -> str:
    """The run's latest attempt: what resume, status and same-run readers look at."""
    return f"manifests/{check_token(asset, 'asset')}/{key.segments()}/manifest.json"


def attempt_manifest_key(asset: str, key: PartitionKey, attempt_id: str) -> str:
    """One attempt's manifest, written create-only: what a pointer names, so a later attempt
    of a promoted run never changes what is current."""
    return (
        f"manifests/{check_token(asset, 'asset')}/{key.segments()}/"
        f"attempts/{check_token(attempt_id, 'attempt_id')}.json"
    )


MANIFEST_FILE = "manifest.json"
_MARKS = "state"
_MARK_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True)
class ManifestMark:
    """What a run's latest manifest says, carried by the name of an empty object beside it so
    that a listing tells it without a read. It speaks only for the `manifest.json` whose ETag it
    names: any later write of that file, by a rerun or by hand, leaves the mark behind."""

    status: str
    identity: str  # a digest of the whole partition (manifest.partition_identity)
    etag: str  # of the manifest.json it describes, as the store answered the write
    error: str = ""  # a failed attempt's error type
    attempt: str = ""  # the attempt that wrote it, so its outputs can be named without a read


def manifest_run_prefix(asset: str, key: PartitionKey) -> str:
    """Everything one run keeps under manifests/: its manifest.json, attempts/ and marks."""
    return manifest_key(asset, key).removesuffix(MANIFEST_FILE)


def _mark_field(value: str) -> bool:
    return 0 < len(value) <= 128 and set(value) <= _MARK_CHARS


def manifest_mark_key(asset: str, key: PartitionKey, mark: ManifestMark) -> str | None:
    """`manifests/<asset>/<partition>/state/<status>.<error>.<identity>.<etag>.<attempt>`
    (`-` for no error or attempt), or None when a value cannot be part of a name (an unusual
    ETag, error type or attempt id): that run's manifest is then read instead."""
    fields = [mark.status, mark.error or "-", mark.identity, mark.etag, mark.attempt or "-"]
    if not all(_mark_field(f) for f in fields):
        return None
    return f"{manifest_run_prefix(asset, key)}{_MARKS}/{'.'.join(fields)}"


def parse_manifest_listing(key: str) -> tuple[str, ManifestMark | None] | None:
    """A listed key under manifests/: (its run prefix, None) for a run's manifest.json, (its run
    prefix, the mark) for a mark, None for anything else (attempt manifests among them)."""
    if not key.startswith("manifests/"):
        return None
    if key.endswith(f"/{MANIFEST_FILE}"):
        return key.removesuffix(MANIFEST_FILE), None
    head, sep, name = key.rpartition(f"/{_MARKS}/")
    fields = name.split(".")
    if not sep or len(fields) != 5 or not all(_mark_field(f) for f in fields):
        return None
    status, error, identity, etag, attempt = ("" if f == "-" else f for f in fields)
    return f"{head}/", ManifestMark(status, identity, etag, error, attempt)


def output_key(asset: str, key: PartitionKey, attempt_id: str, name: str, suffix: str = "parquet") -> str:
    """One output of an attempt: `runs/<asset>/<partition>/attempt=<id>/<name>.<suffix>`."""
    return f"{attempt_prefix(asset, key, attempt_id)}{check_token(name, 'output')}.{suffix}"


def manifest_asset_prefix(asset: str) -> str:
    return f"manifests/{check_token(asset, 'asset')}/"


def manifest_date_prefix(asset: str, game_date: date) -> str:
    return f"{manifest_asset_prefix(asset)}{_d(game_date)}/"


def manifest_scope_prefix(asset: str, key: PartitionKey) -> str:
    """Every run's manifest of one partition (the key without its run) lies under this."""
    return f"{manifest_asset_prefix(asset)}{key.scope().segments()}/"


def pointer_asset_prefix(asset: str) -> str:
    """Every pointer (current and history) of one asset, all partitions."""
    return f"current/{check_token(asset, 'asset')}/"


def pointer_scope(asset: str, key: PartitionKey) -> str:
    """The folder holding an asset's pointer for one partition (all runs) and its history:
    `current/<asset>/game_date=<D>/[draft_group=<G>/]`."""
    return f"{pointer_asset_prefix(asset)}{key.scope().segments()}/"


def model_pointer_scope(model: str) -> str:
    return f"models/{check_token(model, 'model')}/"


def scratch_prefix(name: str) -> str:
    """Throw-away work (e.g. `pipeline verify`'s recomputation), never read as a result."""
    return f"scratch/{check_token(name, 'scratch name')}/"


def backfill_prefix(backfill_id: str) -> str:
    return f"backfills/{check_token(backfill_id, 'backfill_id')}/"


def backfill_key(backfill_id: str, name: str) -> str:
    """One of a range's own files: plan.json, summary.json, summary.csv, report.html."""
    return f"{backfill_prefix(backfill_id)}{check_token(name, 'backfill file')}"


def event_key(ts: datetime, event_id: str) -> str:
    stamp = to_key_ts(ts)
    return f"events/{stamp[:8]}/{stamp}-{check_token(event_id, 'event id')}.json"


def log_prefix(asset: str, key: PartitionKey) -> str:
    return f"logs/{check_token(asset, 'asset')}/{key.segments()}/"


def log_key(asset: str, key: PartitionKey, attempt: int, stream: str) -> str:
    return f"{log_prefix(asset, key)}attempt-{attempt}.{stream}.txt"
