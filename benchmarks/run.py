"""`make bench`: figures measured side by side in one run, written to docs/benchmarks.md.

Not tests: numbers depend on the machine. Each section says what was measured and how.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.harness import RANGE
from benchmarks.overhead import profile_noop, runner_overhead, versus_prefect
from benchmarks.report import SECTIONS, render
from benchmarks.resume import resume_planning
from benchmarks.workloads import season_backfill, simulation_kernel
from steps.runtime.store import open_store
from synthetic.seed import seed_history


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument(
        "--season-end", default="2025-04-13", help="last date of the season backfill (from 2024-10-22)"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to measure ({', '.join(SECTIONS)})",
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="a JSON file of figures: the other sections are read from it, and it is updated",
    )
    args = parser.parse_args()
    season_range = (date(2024, 10, 22), date.fromisoformat(args.season_end))
    only = [name for name in args.only.split(",") if name]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; known: {', '.join(SECTIONS)}")
    earlier: dict[str, Any] = {}
    if args.results is not None and args.results.exists():
        earlier = json.loads(args.results.read_text())
    results = dict(earlier)

    def keep(measured: dict[str, Any]) -> None:
        results.update(measured)
        results["load"] = {**earlier.get("load", {}), **measured.get("load", {})}
        if args.results is not None:  # after each section, so a long run that stops keeps its figures
            args.results.write_text(json.dumps(results, indent=2, default=str))

    measure(only, season_range, keep)
    missing = [name for name in SECTIONS if name not in results]
    if missing:
        print(f"figures of {', '.join(missing)} not measured yet: {args.out} not written", file=sys.stderr)
        return
    text = render(results, season_range)
    Path(args.out).write_text(text)
    print(text)


def measure(
    only: list[str], season_range: tuple[date, date], done: Callable[[dict[str, Any]], None] = lambda _: None
) -> dict[str, Any]:
    """Run the named sections against one seeded template; `done` sees the figures so far
    after each section."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        work = Path(tmp)
        template = work / "template"
        if {"overhead", "prefect", "profile", "season"} & set(only):
            last = max(season_range[1], RANGE[1]) if "season" in only else RANGE[1]
            seed_history(open_store(f"file://{template}", create=True), 2024, start=season_range[0], end=last)
        sections: dict[str, Callable[[], Any]] = {
            "sim": simulation_kernel,
            "overhead": lambda: runner_overhead(template, work),
            "prefect": lambda: versus_prefect(template, work),
            "profile": lambda: profile_noop(template, work),
            "resume": lambda: resume_planning(work),
            "season": lambda: season_backfill(template, work, *season_range),
        }
        for name in SECTIONS:
            if name in only:
                # The machine may be shared: say how busy it was when each section began.
                results.setdefault("load", {})[name] = os.getloadavg()[0]
                results[name] = sections[name]()
                if name == "prefect":
                    results["prefect_version"] = subprocess.run(
                        [".venv-bench/bin/python", "-c", "import prefect; print(prefect.__version__)"],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout.strip()
                done(results)
    return results


if __name__ == "__main__":
    main()
