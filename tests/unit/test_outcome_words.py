"""The words for how a step partition ended (docs/decisions.md D21): each means one thing, and
every surface (task results, summary, status, report, plan record) uses the same ones."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from steps.runtime.manifest import STATUSES, STOPPED_SHORT
from steps.runtime.partition import Partition
from steps.runtime.store import open_store
from workflows.dag.graph import pipeline_graph
from workflows.dag.model import Plan, PlannedPartition
from workflows.dag.outcome import TaskResult, held_back
from workflows.dag.planrecord import RecordedStep
from workflows.observe.report import STATUS_COLOURS
from workflows.observe.status import GLYPHS
from workflows.observe.summary import build_summary, summary_csv

DAY = date(2025, 1, 15)
PARTITION = Partition.build(
    game_date="2025-01-15", run_as_of_ts="2025-01-15T22:00:00Z", run_id="20250115T220000Z-base-w1000"
)


def result(asset: str, status: str, attempts: int = 1, group: str | None = None) -> TaskResult:
    key = PARTITION.key.model_copy(update={"draft_group_id": group}) if group else PARTITION.key
    return TaskResult(DAY, PARTITION.run_id, asset, status, attempts=attempts, key=key, slate=DAY)  # type: ignore[arg-type]


def test_held_back_takes_the_word_its_upstream_stopped_short_with() -> None:
    for word in STOPPED_SHORT:
        assert held_back({"labels.boxscores 2025-01-15": word}) == (
            word,
            f"upstream labels.boxscores 2025-01-15 {word}",
        )
    # A failure anywhere blocks, whatever else stopped short.
    assert held_back({"a": "not_due", "b": "failed"}) == ("blocked", "upstream b failed")
    # What must only not fail (a fan-in's gate) holds nothing back when it stopped short.
    assert held_back({}, {"promote g1": "not_promoted"}) is None


def test_the_summary_counts_each_way_of_stopping_short_apart(tmp_path: Path) -> None:
    results = [
        result("ingest.roster", "reused", attempts=0),
        result("labels.boxscores", "not_due"),
        result("labels.minutes", "not_due", attempts=0),  # held back after labels.boxscores
        result("promote", "not_promoted", group="g1"),
        result("promote", "success", group="g2"),
    ]
    plan = Plan(
        graph=pipeline_graph(),
        partitions=[PlannedPartition(partition=PARTITION, first_tip=PARTITION.run_as_of_ts, steps={})],
        no_slate=[date(2025, 1, 16)],
    )
    now = datetime(2025, 1, 16, tzinfo=UTC)
    summary = build_summary(
        backfill_id="b1",
        kind="backfill",
        plan=plan,
        results=results,
        store=open_store(f"file://{tmp_path}", create=True),
        options={},
        started_at=now,
        finished_at=now,
        mode="subprocess",
    )
    steps = summary.steps
    assert (steps["labels.boxscores"].not_due, steps["labels.boxscores"].ran) == (1, 1)
    assert (steps["labels.minutes"].not_due, steps["labels.minutes"].ran) == (1, 0)
    assert (steps["promote"].not_promoted, steps["promote"].not_due, steps["promote"].ran) == (1, 0, 2)
    assert (steps["ingest.roster"].reused, steps["ingest.roster"].ran) == (1, 0)
    [outcome] = summary.partition_outcomes
    assert outcome.status == "success" and not outcome.failed_steps and not outcome.blocked_steps
    assert outcome.not_due_steps == ["labels.boxscores", "labels.minutes"]
    assert outcome.not_promoted_steps == ["promote / draft group g1"]
    assert summary.partitions["no_slate"] == 1 and summary.no_slate_dates == ["2025-01-16"]
    text = json.dumps(summary.model_dump(mode="json")) + summary_csv(results)
    assert "skip" not in text
    statuses = [line.split(",")[3] for line in summary_csv(results).splitlines()[1:]]
    assert statuses == ["reused", "not_due", "not_due", "not_promoted", "success"]


def test_status_glyphs_and_report_colours_name_every_status_once() -> None:
    assert set(GLYPHS) == set(STATUS_COLOURS) == {*STATUSES, "missing"}
    assert len(set(GLYPHS.values())) == len(GLYPHS)
    assert len(set(STATUS_COLOURS.values())) == len(STATUS_COLOURS)


def test_a_plan_recorded_before_d21_still_reads() -> None:
    recorded = {
        "asset": "ingest.roster",
        "partition": PARTITION.model_dump(mode="json"),
        "slate": "2025-01-15",
    }
    old = RecordedStep.model_validate({**recorded, "action": "skip", "needs": [], "after": []})
    assert old.action == "reuse"
    assert (
        RecordedStep.model_validate({**recorded, "action": "run", "needs": [], "after": []}).action == "run"
    )
