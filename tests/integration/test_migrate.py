"""`pipeline migrate-manifests`: a store written before D22 resumes as it did, after one pass."""

from __future__ import annotations

from datetime import UTC, date, datetime

from steps.runtime import layout
from steps.runtime.manifest import EnvironmentRecord, Manifest, Timing, read_manifest, record_of
from steps.runtime.partition import Partition
from steps.runtime.store import Store, dumps_json
from tests.helpers import run_pipeline_cli
from workflows.observe.migrate import migrate_manifests

DAY = date(2024, 11, 12)
NOW = datetime(2024, 11, 13, tzinfo=UTC)


def manifest(asset: str, attempt_id: str | None, status: str = "success") -> Manifest:
    return Manifest(
        asset=asset,
        partition=Partition.build(game_date=DAY, run_as_of_ts=NOW, run_id="r1"),
        status=status,  # type: ignore[arg-type]
        timing=Timing(started_at=NOW, finished_at=NOW, duration_s=0.1),
        environment=EnvironmentRecord(code_version="old", hostname="h", python="3"),
        correlation_id="c",
        attempt_id=attempt_id,
    )


def write_old(store: Store, m: Manifest) -> str:
    """As a step wrote it before D22: the attempt's record, then the run's manifest.json."""
    run = f"manifests/{m.asset}/{m.key.segments()}/"
    if m.attempt_id:
        store.put_bytes(f"{run}attempts/{m.attempt_id}.json", dumps_json(m.model_dump(mode="json")))
    store.put_bytes(f"{run}manifest.json", dumps_json(m.model_dump(mode="json")))
    store.put_bytes(f"{run}state/success.-.0123456789abcdef.etag.-", b"")  # a mark: ignored
    return f"{run}attempts/{m.attempt_id}.json"


def test_old_manifests_become_records_once(store: Store) -> None:
    with_attempt = manifest("sim.run", "20241112T233000Z-abc123")
    before_attempts = manifest("rates.score", None)
    old_key = write_old(store, with_attempt)
    write_old(store, before_attempts)
    store.put_bytes("manifests/minutes.score/game_date=2024-11-12/run=r1/manifest.json", b"{torn")
    assert read_manifest(store, "sim.run", with_attempt.key) is None  # not seen until migrated

    dry = migrate_manifests(store, dry_run=True)
    assert len(dry.copied) == 3 and not list(store.list(layout.manifest_day_prefix(DAY)))
    done = migrate_manifests(store)
    assert sorted(done.copied) == sorted([record_of(with_attempt)[0], record_of(before_attempts)[0]])
    assert done.present == 1  # sim.run's manifest.json: its attempt already has its record
    assert done.unreadable == ["manifests/minutes.score/game_date=2024-11-12/run=r1/manifest.json"]
    assert read_manifest(store, "sim.run", with_attempt.key) == with_attempt
    assert read_manifest(store, "rates.score", before_attempts.key) == before_attempts
    assert "/attempt=legacy," in record_of(before_attempts)[0]
    assert store.exists(old_key)  # pointers promoted before name it

    again = migrate_manifests(store)
    assert again.copied == [] and again.present == 3


def test_the_command_says_what_it_wrote(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from steps.runtime.store import open_store

    url = f"file://{tmp_path / 'store'}"
    write_old(open_store(url, create=True), manifest("sim.run", "20241112T233000Z-abc123"))
    first = run_pipeline_cli("migrate-manifests", "--store", url)
    assert first.returncode == 0, first.stderr
    assert "wrote 1 records; 1 already had one" in first.stdout
    second = run_pipeline_cli("migrate-manifests", "--store", url)
    assert "wrote 0 records; 2 already had one" in second.stdout
