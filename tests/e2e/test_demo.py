"""`make demo` as a newcomer meets it: `pipeline demo` seeds, backfills, says where to look, and
each command it suggests works as it says."""

from __future__ import annotations

import shlex
from pathlib import Path

from steps.runtime.store import open_store
from tests.helpers import latest_summary, run_pipeline_cli


def test_the_demo_runs_and_its_suggestions_work(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'demo-store'}"
    demo = run_pipeline_cli("demo", "--store", url, "--start", "2024-11-18", "--end", "2024-11-18")
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    out = demo.stdout
    summary = latest_summary(open_store(url))
    assert summary["partitions"]["succeeded"] == 1 and summary["partitions"]["failed"] == 0
    where = out[out.index("Where to look") :]
    # Every path it names is under the store, and the optional draft-group segment is shown.
    assert f"{url}/runs/<asset>/game_date=<D>/[draft_group=<G>/]run=<run_id>/" in where
    assert f"{url}/backfills/{summary['backfill_id']}/summary.json" in where
    tried = [line.split("try:", 1)[-1].split("(resume", 1)[0].strip() for line in where.splitlines()]
    commands = [shlex.split(c) for c in tried if c.startswith("pipeline ")]
    assert [c[1] for c in commands] == ["show", "run"], where
    show = run_pipeline_cli(*commands[0][1:])
    assert show.returncode == 0, show.stderr
    assert "2024-11-18" in show.stdout
    again = run_pipeline_cli(*commands[1][1:])
    assert again.returncode == 0, again.stderr
    assert "Nothing to do" in again.stdout  # as the demo says: resume runs nothing
