"""`pipeline report`: accuracy over time (MAE against the naive baseline), coverage per draft
group and the dates that breached its thresholds (issue #16)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from steps.pipeline.health import COVERAGE_CRITICAL, COVERAGE_WARN
from steps.runtime.manifest import Manifest, read_manifest, write_manifest
from steps.runtime.partition import PartitionKey
from steps.runtime.store import Store, open_store
from tests.helpers import run_pipeline_cli, slate_pointers

DAYS = ["2024-11-14", "2024-11-15", "2024-11-16"]


def _rows(page: str, div: str) -> list[list[str]]:
    block = page.split(f'<div id="{div}">', 1)[1].split("</div>", 1)[0]
    body = block.split("<tbody>", 1)[1]
    return [
        [re.sub(r"<[^>]+>", " ", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body)
    ]


def _report(seeded: str, out: Path) -> str:
    made = run_pipeline_cli(
        "report", "--store", seeded, "--start", DAYS[0], "--end", DAYS[-1], "-o", str(out)
    )
    assert made.returncode == 0, made.stderr
    return out.read_text()


def _health(store: Store, day: str) -> list[Manifest]:
    found = []
    for pointer in slate_pointers(store, day):
        key = PartitionKey(
            game_date=date.fromisoformat(day), draft_group_id=pointer.draft_group_id, run_id=pointer.run_id
        )
        manifest = read_manifest(store, "health.checks", key)
        assert manifest is not None
        found.append(manifest)
    return found


def test_report_lists_accuracy_coverage_and_breaches(seeded: str, fast_config: str, tmp_path: Path) -> None:
    run = run_pipeline_cli(
        "run", "--start", DAYS[0], "--end", DAYS[-1], "--store", seeded, "--config", fast_config
    )
    assert run.returncode == 0, run.stderr
    store = open_store(seeded)

    page = _report(seeded, tmp_path / "report.html")
    assert 'id="accuracy"' in page and "MAE vs naive baseline" in page
    rows = {r[0]: r for r in _rows(page, "accuracy-table")}
    assert sorted(rows) == DAYS
    for day in DAYS:
        run_id = slate_pointers(store, day)[0].run_id
        accuracy = read_manifest(
            store, "accuracy", PartitionKey(game_date=date.fromisoformat(day), run_id=run_id)
        )
        assert accuracy is not None and accuracy.status == "success"
        assert rows[day][1] == f"{accuracy.metrics['mae_fp']:.4f}"
        assert rows[day][2] == f"{accuracy.metrics['baseline_mae_fp']:.4f}"
        for health in _health(store, day):
            assert f"{health.partition.draft_group_id}: {health.metrics['coverage']:.4f}" in rows[day][4]
            assert health.metrics["coverage"] >= COVERAGE_WARN  # the seeded slates are fully covered
    assert '<div id="breach-table">' not in page and "No date breached" in page

    # one date below the critical threshold, one between critical and warn
    low = {DAYS[1]: COVERAGE_CRITICAL - 0.05, DAYS[2]: (COVERAGE_CRITICAL + COVERAGE_WARN) / 2}
    for day, value in low.items():
        manifest = _health(store, day)[0]
        write_manifest(
            store,
            manifest.model_copy(
                update={"metrics": {**manifest.metrics, "coverage": value}, "attempt_id": None}
            ),
        )

    page = _report(seeded, tmp_path / "breach.html")
    breaches = {r[0]: r for r in _rows(page, "breach-table")}
    assert sorted(breaches) == [DAYS[1], DAYS[2]]
    assert breaches[DAYS[1]][2:] == [f"{low[DAYS[1]]:.4f}", "critical"]
    assert breaches[DAYS[2]][2:] == [f"{low[DAYS[2]]:.4f}", "warn"]
    assert breaches[DAYS[1]][1] == _health(store, DAYS[1])[0].partition.draft_group_id
    rows = {r[0]: r for r in _rows(page, "accuracy-table")}
    assert f"{low[DAYS[1]]:.4f}" in rows[DAYS[1]][4]
