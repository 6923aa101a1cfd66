"""`pipeline migrate-manifests`: file manifests written before D22 as the records resume lists."""

from __future__ import annotations

from dataclasses import dataclass, field

from steps.runtime import layout
from steps.runtime.errors import ManifestError, ObjectNotFound, PreconditionFailed
from steps.runtime.manifest import parse_manifest, write_manifest
from steps.runtime.store import Store

# Before D22 a run kept `manifests/<asset>/<partition>/manifest.json` (its latest attempt), each
# attempt's `attempts/<id>.json`, and empty marks under `state/`; the asset came first.
_OLD_LATEST = "/manifest.json"
_OLD_ATTEMPTS = "/attempts/"


@dataclass
class Migration:
    """What a migration found under manifests/ and did with it."""

    copied: list[str] = field(default_factory=list)  # the new records written
    present: int = 0  # old manifests whose attempt already has a record
    unreadable: list[str] = field(default_factory=list)  # old keys that are not a manifest (rerun)


def old_manifest_keys(store: Store) -> list[str]:
    """The old layout's manifests: each attempt's record first, then each run's manifest.json
    (which only adds an attempt no record of its own kept, e.g. one written before attempts)."""
    attempts, latest = [], []
    for info in store.list(layout.MANIFESTS):
        first = info.key.removeprefix(layout.MANIFESTS).split("/", 1)[0]
        if layout.parse_record_key(info.key) is not None or _is_day(first):
            continue
        if info.key.endswith(_OLD_LATEST):
            latest.append(info.key)
        elif _OLD_ATTEMPTS in info.key and info.key.endswith(".json"):
            attempts.append(info.key)
    return attempts + latest


def _is_day(text: str) -> bool:
    return len(text) == 10 and text[4] == "-" and text[7] == "-"


def migrate_manifests(store: Store, *, dry_run: bool = False) -> Migration:
    """Write every old manifest as its attempt's record (create-only, so a second pass, or one
    interrupted half-way and started again, writes nothing twice). The old keys stay: pointers
    promoted before name them, and they are read by key."""
    done = Migration()
    for key in old_manifest_keys(store):
        try:
            manifest = parse_manifest(store.get_bytes(key), store.describe(key))
        except (ManifestError, ObjectNotFound):
            done.unreadable.append(key)
            continue
        if dry_run:
            done.copied.append(layout.manifest_run_prefix(manifest.asset, manifest.key))
            continue
        try:
            done.copied.append(write_manifest(store, manifest))
        except PreconditionFailed:
            done.present += 1
    return done
