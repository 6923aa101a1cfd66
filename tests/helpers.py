"""Small builders shared by tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from steps.runtime.manifest import EnvironmentRecord, Manifest, Timing, write_manifest
from steps.runtime.partition import Partition
from steps.runtime.store import ObjectInfo, Store

if TYPE_CHECKING:
    from steps.runtime.pointer import Pointer


def make_manifest(
    store: Store,
    asset: str,
    run_id: str,
    *,
    as_of: str = "2025-01-15T22:00:00Z",
    status: str = "success",
    game_date: str = "2025-01-15",
) -> Manifest:
    now = datetime.now(UTC)
    manifest = Manifest(
        asset=asset,
        partition=Partition.build(game_date=game_date, run_as_of_ts=as_of, run_id=run_id),
        status=status,  # type: ignore[arg-type]
        timing=Timing(started_at=now, finished_at=now, duration_s=0.0),
        environment=EnvironmentRecord(code_version="test", hostname="test", python="3"),
        correlation_id="test",
    )
    write_manifest(store, manifest)
    return manifest


def run_steps_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "steps", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def run_pipeline_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "workflows.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def output_hashes(store: Store) -> dict[tuple[str, str, str, str], str]:
    """(asset, game_date, run_id, output) -> content hash, over every success manifest."""
    from steps.runtime.manifest import list_manifests

    found = {}
    for manifest in list_manifests(store, "manifests/"):
        if manifest.status != "success":
            continue
        for out in manifest.outputs:
            found[
                (
                    manifest.asset,
                    manifest.partition.game_date.isoformat(),
                    manifest.partition.run_id,
                    out.name,
                )
            ] = out.content_hash
    return found


def manifests_by_status(store: Store) -> dict[str, list[tuple[str, str]]]:
    """status -> (asset, partition key) of every run's latest manifest."""
    from steps.runtime.manifest import list_manifests

    out: dict[str, list[tuple[str, str]]] = {}
    for m in list_manifests(store, "manifests/"):
        out.setdefault(m.status, []).append((m.asset, m.partition.key.segments()))
    return out


def slate_pointers(store: Store, day: str) -> list[Pointer]:
    """The current pointers of a slate's published table: one per draft group."""
    from steps.runtime.pointer import Pointer

    found = []
    for info in store.list(f"current/finalize.unified/game_date={day}/"):
        if info.key.endswith("/current_run.json"):
            found.append(Pointer.model_validate_json(store.get_bytes(info.key)))
    return sorted(found, key=lambda p: p.draft_group_id or "")


def slate_pointer(store: Store, day: str) -> Pointer | None:
    """The first draft group's current pointer of a slate (None when it has none)."""
    found = slate_pointers(store, day)
    return found[0] if found else None


def latest_summary(store: Store) -> dict:
    keys = sorted(i.key for i in store.list("backfills/") if i.key.endswith("summary.json"))
    assert keys, "no backfill summary written"
    return store.get_json(keys[-1])


class Recording(Store):
    """Passes everything to `inner`, and records what is asked of it: each read by key, each
    listing by prefix."""

    def __init__(self, inner: Store) -> None:
        self.inner, self.url = inner, inner.url
        self.reads: list[str] = []
        self.listings: list[str] = []

    def put_bytes(self, key: str, data: bytes) -> str:
        return self.inner.put_bytes(key, data)

    def put_if(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        return self.inner.put_if(key, data, if_match=if_match, if_none_match=if_none_match)

    def get_bytes(self, key: str) -> bytes:
        self.reads.append(key)
        return self.inner.get_bytes(key)

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        self.reads.append(key)
        return self.inner.get_with_etag(key)

    def stat(self, key: str) -> ObjectInfo | None:
        self.reads.append(key)
        return self.inner.stat(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self.listings.append(prefix)
        return self.inner.list(prefix)

    def list_after(self, prefix: str, start_after: str, stop: str) -> Iterator[ObjectInfo]:
        self.listings.append(prefix)
        return self.inner.list_after(prefix, start_after, stop)

    def list_dirs(self, prefix: str) -> list[str]:
        self.listings.append(prefix)
        return self.inner.list_dirs(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def reads_under(self, prefix: str) -> list[str]:
        return sorted(k for k in self.reads if k.startswith(prefix))
