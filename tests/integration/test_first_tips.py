"""A plan remembers the first tips it read from the slates' schedules, and the next plan reads
them from there, on both backends; a new snapshot, a changed one or an unreadable memory is read
from the snapshots again, and a dry run writes nothing (workflows/dag/first_tips.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd

from steps.runtime import layout
from steps.runtime.store import Store, open_store
from tests.helpers import Recording, run_pipeline_cli
from workflows.dag.config import load_config
from workflows.dag.first_tips import KnownTips
from workflows.dag.graph import pipeline_graph
from workflows.dag.model import Plan
from workflows.dag.plan import make_plan

DAYS = [date(2024, 11, 12), date(2024, 11, 13), date(2024, 11, 15)]
LANDED = datetime(2024, 8, 1, tzinfo=UTC)


class Reads(Recording):
    def snapshot_reads(self) -> list[str]:
        return self.reads_under(layout.LANDING)


def land(store: Store, day: date, *, hours: float = 24, landed: datetime = LANDED) -> str:
    tip = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hours)
    frame = pd.DataFrame(
        {
            "game_id": [f"{day}-g", f"{day}-h"],
            "game_date": [day.isoformat()] * 2,
            "season": [2024] * 2,
            "tip_ts": [pd.Timestamp(tip), pd.Timestamp(tip + timedelta(hours=2))],
            "home_team": ["BOS", "LAL"],
            "away_team": ["NYK", "GSW"],
        }
    )
    key = layout.landing_snapshot_key("schedule", day, landed)
    store.put_parquet(key, frame)
    return key


def plan(store: Store, *, remember: bool = True) -> Plan:
    return make_plan(store, pipeline_graph(), load_config(), start=DAYS[0], end=DAYS[-1], remember=remember)


def as_ofs(done: Plan) -> dict[date, datetime]:
    return {p.partition.game_date: p.partition.run_as_of_ts for p in done.partitions}


def test_the_next_plan_reads_the_tips_the_first_remembered(store: Store) -> None:
    keys = [land(store, d) for d in DAYS]
    first = Reads(store)
    cold = plan(first)
    assert first.snapshot_reads() == sorted(keys)
    assert layout.first_tips_key(2024) in {i.key for i in store.list(layout.CACHE)}
    again = Reads(store)
    warm = plan(again)
    assert again.snapshot_reads() == []
    assert layout.first_tips_key(2024) in again.reads
    # the same slates at the same as-of: 30 minutes before the earlier of each date's tips
    assert as_ofs(warm) == as_ofs(cold)
    assert as_ofs(warm)[DAYS[0]] == datetime(2024, 11, 12, 23, 30, tzinfo=UTC)


def test_a_new_or_changed_snapshot_is_read_again(store: Store) -> None:
    for d in DAYS:
        land(store, d)
    plan(store)
    newer = land(store, DAYS[1], hours=20, landed=LANDED + timedelta(days=30))  # a new snapshot
    memory = KnownTips.model_validate_json(store.get_bytes(layout.first_tips_key(2024)))
    changed = layout.landing_snapshot_key("schedule", DAYS[2], LANDED)
    memory.tips[changed] = memory.tips[changed].model_copy(update={"size_bytes": 1})  # not its size
    store.put_bytes(layout.first_tips_key(2024), memory.model_dump_json().encode())
    reads = Reads(store)
    done = plan(reads)
    assert reads.snapshot_reads() == sorted([newer, changed])
    assert as_ofs(done)[DAYS[1]] == datetime(2024, 11, 13, 19, 30, tzinfo=UTC)  # the new tip
    again = Reads(store)
    assert as_ofs(plan(again)) == as_ofs(done) and again.snapshot_reads() == []


def test_an_unreadable_memory_is_read_from_the_snapshots_and_written_anew(store: Store) -> None:
    keys = [land(store, d) for d in DAYS]
    store.put_bytes(layout.first_tips_key(2024), b'{"tips": {"landing/x": {"size_bytes": "no"')
    reads = Reads(store)
    plan(reads)
    assert reads.snapshot_reads() == sorted(keys)
    KnownTips.model_validate_json(store.get_bytes(layout.first_tips_key(2024)))  # readable again


def test_a_plan_that_must_not_write_remembers_nothing(store: Store) -> None:
    for d in DAYS:
        land(store, d)
    before = sorted(i.key for i in store.list(""))
    plan(store, remember=False)
    assert sorted(i.key for i in store.list("")) == before


def test_a_dry_run_writes_nothing(seeded: str) -> None:
    store = open_store(seeded)
    before = sorted(i.key for i in store.list(""))
    result = run_pipeline_cli("run", "--start", "2024-11-14", "--store", seeded, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert sorted(i.key for i in store.list("")) == before
