"""Each key parser in steps/runtime/layout.py inverts its builder, and refuses other keys."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from steps.runtime import layout
from steps.runtime.layout import RunRef
from steps.runtime.partition import PartitionKey

DAY = date(2025, 1, 15)
AT = datetime(2025, 1, 15, 23, 30, 1, tzinfo=UTC)
KEYS = [
    PartitionKey(game_date=DAY, run_id="20250115T233001Z-abc"),
    PartitionKey(game_date=DAY, draft_group_id="dg-118223", run_id="r1"),
    PartitionKey(month="2025-01", run_id="r1"),
    PartitionKey(game_date=DAY),  # a settled date: not run-scoped
]
SCOPES = [PartitionKey(game_date=DAY), PartitionKey(game_date=DAY, draft_group_id="dg-118223")]


@pytest.mark.parametrize("key", KEYS)
def test_run_keys_round_trip(key: PartitionKey) -> None:
    attempt = "20250115T233001Z-3f9a1c"
    output = layout.output_key("sim.run", key, attempt, "data")
    assert layout.parse_run_key(output) == RunRef("sim.run", key, attempt)
    assert layout.parse_run_key(layout.attempt_prefix("sim.run", key, attempt)) == RunRef(
        "sim.run", key, attempt
    )
    # a run written before attempts had folders: no attempt
    assert layout.parse_run_key(f"{layout.run_prefix('sim.run', key)}data.parquet") == RunRef("sim.run", key)


NAME = layout.RecordName(
    written=layout.record_written(AT.replace(microsecond=42)),
    status="failed",
    identity="0123456789abcdef",
    digest="0" * 32,
    error="MissingInput",
)


@pytest.mark.parametrize("key", KEYS)
def test_record_keys_round_trip(key: PartitionKey) -> None:
    record = layout.record_key("sim.run", key, "a-1", NAME)
    assert layout.parse_record_key(record) == (RunRef("sim.run", key, "a-1"), NAME)
    assert record.startswith(layout.manifest_run_prefix("sim.run", key))
    # filed by day first, whatever the asset: one listing over days sees every asset (D22)
    assert record.startswith(layout.manifest_day_prefix(layout.manifest_day(key)))
    assert layout.parse_run_key(record) is None


def test_record_names_carry_groups_only_when_they_fit() -> None:
    grouped = layout.RecordName(NAME.written, "success", NAME.identity, NAME.digest, groups=("dg-1", "dg_2"))
    assert layout.RecordName.parse(grouped.text()) == grouped
    many = layout.RecordName(NAME.written, "success", NAME.identity, NAME.digest, groups=("g" * 40,) * 9)
    assert layout.RecordName.parse(many.text()) == layout.RecordName(
        NAME.written, "success", NAME.identity, NAME.digest
    )
    dotted = layout.RecordName(NAME.written, "success", NAME.identity, NAME.digest, groups=("a.b",))
    assert layout.RecordName.parse(dotted.text()) == layout.RecordName(
        NAME.written, "success", NAME.identity, NAME.digest
    )
    odd_error = layout.RecordName(NAME.written, "failed", NAME.identity, NAME.digest, error="a.b/c d")
    assert layout.RecordName.parse(odd_error.text()) == layout.RecordName(
        NAME.written, "failed", NAME.identity, NAME.digest, error="abcd"
    )
    later = layout.record_written(AT.replace(microsecond=43))
    assert later > NAME.written and len(later) == len(NAME.written)


@pytest.mark.parametrize("scope", SCOPES)
def test_scope_prefixes_round_trip(scope: PartitionKey) -> None:
    assert layout.parse_pointer_scope(layout.pointer_scope("finalize.unified", scope)) == (
        "finalize.unified",
        scope,
    )
    run = scope.model_copy(update={"run_id": "r1"})
    record = layout.record_key("sim.run", run, "a-1", NAME)
    assert record.startswith(layout.manifest_scope_prefix("sim.run", scope))
    assert record.startswith(layout.manifest_date_prefix("sim.run", DAY))
    other = layout.record_key("sim.run", run.model_copy(update={"run_id": "r10"}), "a-1", NAME)
    assert not other.startswith(layout.manifest_run_prefix("sim.run", run))  # r1 is not r10
    again = layout.record_key("sim.run", run, "a-10", NAME)
    assert not again.startswith(layout.attempt_record_prefix("sim.run", run, "a-1"))  # nor a-1 a-10

    pointer = layout.pointer_key(layout.pointer_scope("finalize.unified", scope))
    assert layout.parse_pointer_key(pointer) == layout.pointer_scope("finalize.unified", scope)


def test_a_partition_too_long_for_a_file_name_is_refused() -> None:
    long = PartitionKey(game_date=DAY, draft_group_id="g" * 120, run_id="r" * 120)
    with pytest.raises(ValueError, match="over 250 bytes"):
        layout.manifest_run_prefix("sim.run", long)


def test_date_prefixes_round_trip() -> None:
    assert layout.parse_landing_date_prefix(layout.landing_date_prefix("schedule", DAY)) == ("schedule", DAY)


def test_pointer_history_round_trips() -> None:
    scope = layout.model_pointer_scope("minutes")
    assert layout.parse_pointer_key(layout.pointer_key(scope)) == scope
    assert layout.parse_history_key(layout.history_key(scope, 12)) == (scope, 12)
    assert layout.parse_history_key(f"{layout.history_prefix(scope)}x.json") is None


def test_landing_snapshot_round_trips() -> None:
    key = layout.landing_snapshot_key("injuries", DAY, AT)
    assert layout.parse_landing_snapshot_key(key) == ("injuries", DAY, AT)
    assert layout.parse_landing_snapshot_key(key.replace(layout.SNAPSHOT_FILE, "_tmp.parquet")) is None


def test_backfill_and_event_keys_round_trip() -> None:
    assert layout.parse_backfill_key(layout.plan_key("bf-1")) == ("bf-1", layout.PLAN_FILE)
    summary = layout.backfill_key("bf-1", layout.SUMMARY_FILE)
    assert layout.parse_backfill_key(summary) == ("bf-1", layout.SUMMARY_FILE)
    key = layout.event_key(AT, "e1f2")
    assert layout.parse_event_key(key) == (AT, "e1f2")
    day = layout.event_day_prefix("20250115")
    assert key.startswith(day) and layout.parse_event_day_prefix(day) == "20250115"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "runs/",
        "runs/sim.run/data.parquet",  # no partition
        "runs/sim.run/game_date=2025-01-15/run=r1",  # the run folder itself, nothing in it
        "runs/sim.run/game_date=2025-13-01/run=r1/data.parquet",  # not a date
        "runs/sim.run/run=r1/game_date=2025-01-15/data.parquet",  # out of order
        "runs/../game_date=2025-01-15/run=r1/data.parquet",
        "runs/sim.run/game_date=2025-01-15/run=r1/attempt=../data.parquet",
        "manifests/sim.run/game_date=2025-01-15/run=r1/manifest.json",  # another root
    ],
)
def test_run_key_refuses(key: str) -> None:
    assert layout.parse_run_key(key) is None


@pytest.mark.parametrize(
    "key",
    [
        "manifests/sim.run/game_date=2025-01-15/run=r1/manifest.json",  # the layout before D22
        "manifests/sim.run/game_date=2025-01-15/run=r1/attempts/a-1.json",
        f"manifests/2025-01-15/sim.run,game_date=2025-01-15,run=r1/{NAME.text()}",  # no attempt
        f"manifests/2025-01-16/sim.run,game_date=2025-01-15,run=r1/attempt=a-1,{NAME.text()}",  # wrong day
        "manifests/2025-01-15/sim.run,game_date=2025-01-15,run=r1/attempt=a-1,x.json",
        f"manifests/2025-01-15/sim.run,game_date=2025-01-15,draft_group=g/attempt=a-1,{NAME.text()}",
        f"manifests/2025-01-15/sim.run/game_date=2025-01-15,run=r1/attempt=a-1,{NAME.text()}",
        f"manifests/2025-01-15/sim.run,game_date=2025-01-15,run=r1/attempt=..,{NAME.text()}",
        f"manifests/2025-01-15/,game_date=2025-01-15,run=r1/attempt=a-1,{NAME.text()}",
        f"manifests/2025-01-15/sim.run,game_date=2025-01-15,run=r1/x/attempt=a-1,{NAME.text()}",
        "manifests/2025-01-15/a,b",
        f"runs/2025-01-15/sim.run,game_date=2025-01-15,run=r1/attempt=a-1,{NAME.text()}",
    ],
)
def test_record_key_refuses(key: str) -> None:
    assert layout.parse_record_key(key) is None


def test_scope_parsers_refuse_runs_and_other_folders() -> None:
    assert layout.parse_pointer_scope(layout.history_prefix(layout.pointer_scope("f.u", SCOPES[0]))) is None
    assert layout.parse_landing_date_prefix("landing/schedule/month=2025-01/") is None
    assert layout.parse_backfill_key("backfills/bf-1") is None
    assert layout.parse_event_day_prefix("events/2025/") is None


@pytest.mark.parametrize("key", KEYS)
def test_log_keys_round_trip_and_order_by_attempt_number(key: PartitionKey) -> None:
    keys = [layout.log_key("sim.run", key, n, "stderr") for n in (2, 10, 9)]
    assert [layout.parse_log_key(k) for k in keys] == [(2, "stderr"), (10, "stderr"), (9, "stderr")]
    # attempt 10 is the newest, though "attempt-10" sorts before "attempt-9" as text
    assert layout.newest_log(keys) == keys[1]
    assert layout.newest_log(keys, "stdout") is None
    assert layout.parse_log_key(layout.log_key("sim.run", key, 1, "stdout")) == (1, "stdout")


@pytest.mark.parametrize(
    "key",
    [
        "logs/sim.run/game_date=2025-01-15/run=r1/notes.txt",
        "logs/sim.run/attempt-x.stderr.txt",
        "runs/a/attempt-1.stderr.txt",
    ],
)
def test_log_key_refuses(key: str) -> None:
    assert layout.parse_log_key(key) is None


def test_attempt_ids_carry_their_start_time() -> None:
    assert layout.attempt_started("20250115T233001Z-3f9a1c") == AT
    started = layout.attempt_started(layout.new_attempt_id())
    assert started is not None and abs((datetime.now(UTC) - started).total_seconds()) < 60
    assert layout.attempt_started("manual-1") is None
