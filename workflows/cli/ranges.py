"""`pipeline run`: plan and run a range of slates on the local runner (a daily run is a range of one)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import cast, get_args

import typer

from steps.runtime.errors import PipelineError
from steps.runtime.partition import check_token, parse_as_of
from steps.runtime.store import open_store
from workflows.cli.app import STORE_HELP, app, as_of_mode_of, date_range, default_store, fail, today_et
from workflows.cli.range_exec import execute_range
from workflows.dag.config import load_config
from workflows.dag.graph import Graph, check_limits, pipeline_graph
from workflows.dag.model import RangeRequest
from workflows.local.runner import Mode


def _runner_mode(value: str) -> Mode:
    if value in get_args(Mode):
        return cast(Mode, value)
    raise fail(f"--runner must be warm or subprocess, not {value!r}")


def _check_simulation(worlds: int | None, profile: str | None) -> None:
    if worlds is not None and worlds <= 0:
        raise fail(f"--worlds must be positive, got {worlds}")
    if profile is not None:
        from steps.pipeline.sim_params import profile_scale

        check_token(profile, "profile")
        profile_scale(profile)


def _selected_graph(steps: list[str] | None, no_downstream: bool) -> Graph:
    """The whole DAG, or `--steps` and (unless `--no-downstream`) what they feed."""
    if steps:
        return pipeline_graph().select(steps, downstream=not no_downstream)
    if no_downstream:
        raise fail("--no-downstream goes with --steps")
    return pipeline_graph()


@app.command()
def run(
    start: str | None = typer.Option(
        None, "--start", help="First ET slate date, YYYY-MM-DD (default: today ET)"
    ),
    end: str | None = typer.Option(None, "--end", help="Last ET slate date (default: --start)"),
    season: int | None = typer.Option(None, "--season", help="Season label (default: from the date)"),
    as_of_mode: str = typer.Option("pretip", "--as-of-mode", help="pretip | lock | custom"),
    as_of_ts: str | None = typer.Option(None, "--as-of-ts", help="UTC as-of for --as-of-mode custom"),
    max_parallel: int | None = typer.Option(None, "--max-parallel", min=1, help="Steps running at once"),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Reuse steps with a success manifest (they do not run)"
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run/--no-dry-run", help="Print the plan; execute and write nothing"
    ),
    steps: list[str] | None = typer.Option(
        None,
        "--steps",
        help="Run these steps and, through the mapped partitions, their downstream steps (+asset adds upstream)",
    ),
    no_downstream: bool = typer.Option(
        False, "--no-downstream", help="With --steps: reprocess only those steps' partitions, no cascade"
    ),
    draft_group: list[str] | None = typer.Option(
        None, "--draft-group", help="Only these draft groups' partitions (the other groups stay untouched)"
    ),
    reason: str | None = typer.Option(
        None, "--reason", help="Why this run is made; kept in every manifest and the summary"
    ),
    worlds: int | None = typer.Option(None, "--worlds", help="Simulation worlds"),
    profile: str | None = typer.Option(
        None, "--profile", help="Simulation profile: base | conservative | volatile"
    ),
    force: bool = typer.Option(False, "--force", help="Recompute as a new run (a new run id)"),
    catch_up_days: int | None = typer.Option(
        None, "--catch-up-days", min=0, help="Also heal the N days before the end date"
    ),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
    config_path: Path | None = typer.Option(None, "--config", help="Pipeline config (default: packaged)"),
    runner_mode: str = typer.Option(
        "warm",
        "--runner",
        help="warm (forked, pre-imported) | subprocess (fresh interpreter per step)",
    ),
) -> None:
    """Run a range of slate dates through the DAG: a daily run is a range of one."""
    from workflows.dag.catchup import catch_up_annotator

    try:
        config = load_config(config_path)
        mode_of_as_of = as_of_mode_of(as_of_mode)
        mode = _runner_mode(runner_mode)
        custom = parse_as_of(as_of_ts) if as_of_ts is not None else None
        _check_simulation(worlds, profile)
        first, last = date_range(start, end, default=today_et(config))
        kind = "daily" if first == last else "backfill"
        graph = _selected_graph(steps, no_downstream)
        for group in draft_group or []:
            check_token(group, "--draft-group")
        check_limits(graph, config.limits)
        target = open_store(store or default_store())
        annotate = None
        if catch_up_days:
            first = min(first, date.fromordinal(last.toordinal() - catch_up_days))
            annotate = catch_up_annotator(last, target)
            kind = "catch-up"
        request = RangeRequest(
            start=first,
            end=last,
            as_of_mode=mode_of_as_of,
            as_of_ts=custom,
            worlds=worlds,
            profile=profile,
            season=season,
            resume=resume,
            force=force,
            draft_groups=draft_group,
            reason=reason,
            no_downstream=no_downstream,
            max_parallel=max_parallel,
        )
        _, summary = execute_range(
            request,
            store=target,
            graph=graph,
            config=config,
            kind=kind,
            mode=mode,
            dry_run=dry_run,
            annotate=annotate,
        )
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    if summary is not None and summary.failed:
        raise typer.Exit(1)
