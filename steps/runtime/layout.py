"""Every key the pipeline reads or writes is built here, and nowhere else."""

from __future__ import annotations

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


def event_key(ts: datetime, event_id: str) -> str:
    stamp = to_key_ts(ts)
    return f"events/{stamp[:8]}/{stamp}-{check_token(event_id, 'event id')}.json"


def log_prefix(asset: str, key: PartitionKey) -> str:
    return f"logs/{check_token(asset, 'asset')}/{key.segments()}/"


def log_key(asset: str, key: PartitionKey, attempt: int, stream: str) -> str:
    return f"{log_prefix(asset, key)}attempt-{attempt}.{stream}.txt"
