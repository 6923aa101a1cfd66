"""`pipeline run`, `seed-history` and `demo`: plan and run a range of slates on the local runner."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any, cast, get_args

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from steps.pipeline.finalize import PUBLISHED_ASSET
from steps.runtime.errors import PipelineError
from steps.runtime.events import emit
from steps.runtime.partition import PartitionKey, check_token, parse_as_of
from steps.runtime.store import Store, open_store
from steps.runtime.timefmt import to_key_ts, utc_now
from workflows.cli.app import (
    STORE_HELP,
    app,
    console,
    default_store,
    draft_groups_on,
    err_console,
    fail,
    parse_date,
    today_et,
)
from workflows.dag.config import PipelineConfig, load_config
from workflows.dag.graph import Graph, check_limits, pipeline_graph
from workflows.dag.ids import new_backfill_id
from workflows.dag.model import AsOfMode, Plan
from workflows.dag.plan import make_plan, source_selections
from workflows.local.runner import LocalRunner, Mode, TaskResult
from workflows.observe.summary import Summary, build_summary, write_summary


# ---- run ----------------------------------------------------------------------------------
def _print_plan(plan: Plan, store: Store, *, dry_run: bool) -> None:
    table = Table(title="Plan" + (" (dry run: nothing will be executed or written)" if dry_run else ""))
    for column in ("game_date", "run_id", "as of (UTC)", "to run", "reused (why)", "run (why)"):
        table.add_column(column)
    for planned in plan.partitions:
        p = planned.partition
        nodes = plan.slate_nodes(p.game_date)
        reused = [n for n in nodes if n.action == "reuse"]
        run = [n for n in nodes if n.action == "run"]
        reasons_run = sorted({n.reason for n in run})
        table.add_row(
            p.game_date.isoformat(),
            p.run_id,
            p.as_of_iso(),
            f"{len(run)}/{len(nodes)}"
            + (f" {', '.join(n.label for n in run)}" if 0 < len(run) < len(nodes) else ""),
            f"{len(reused)} ({reused[0].reason})" if reused else "0",
            "; ".join(reasons_run) + (f" [{planned.note}]" if planned.note else ""),
        )
    console.print(table)
    console.print(_partitions_line(plan), highlight=False)
    shared = plan.slate_nodes(None)
    if shared:
        to_run = [n for n in shared if n.action == "run"]
        console.print(
            f"Shared partitions: {len(shared)} ({len(to_run)} to run"
            + (
                f": {', '.join(n.label for n in to_run[:6])}" + (" ..." if len(to_run) > 6 else "")
                if to_run
                else ""
            )
            + ")",
            highlight=False,
        )
    for planned in plan.partitions:
        if planned.note:
            verb = "would heal" if dry_run else "healing"
            console.print(
                f"{verb} {planned.partition.game_date}: {planned.note} ({len(planned.to_run)} steps)",
                highlight=False,
            )
    if plan.no_slate:
        console.print(
            f"No slate (no schedule snapshot) on: {', '.join(d.isoformat() for d in plan.no_slate)}"
        )
    if dry_run:
        for planned in plan.partitions:
            picks = source_selections(store, plan.graph, planned)
            lines = [f"  {src}: {pick}" for src, pick in picks.items()]
            console.print(
                f"[bold]{planned.partition.game_date}[/] as-of selections:\n" + "\n".join(lines),
                highlight=False,
            )


def _partitions_line(plan: Plan) -> str:
    """Partitions per asset, deduplicated across the range: `ingest.schedule 1 (2025-01)`."""
    counts: dict[str, list[str]] = {}
    for node in plan.nodes.values():
        counts.setdefault(node.asset, []).append(node.partition.describe())
    pending = [f"draft groups of {k.game_date} when dk.salaries has run" for k in _unexpanded(plan)]
    parts = [
        f"{asset} {len(names)}" + (f" ({names[0]})" if len(names) == 1 else "")
        for asset, names in counts.items()
    ]
    return "Partitions by step: " + ", ".join(parts) + ("; " + "; ".join(pending) if pending else "")


def _unexpanded(plan: Plan) -> list[PartitionKey]:
    wanted = any(plan.graph.specs[a].shape.name == "draft_group" for a in plan.graph.order)
    return [p.partition.key for p in plan.partitions if wanted and p.partition.key not in plan.draft_groups]


def _print_summary(summary: Summary, keys: tuple[str, str], store: Store) -> None:
    p = summary.partitions
    console.print(
        f"\n[bold]Backfill {summary.backfill_id}[/] ({summary.kind}): {p['planned']} partitions, "
        f"{p['succeeded']} succeeded, {p['failed']} failed, {p['reused']} reused, "
        f"{p['no_slate']} without a slate; {summary.wall_s:.1f}s",
        highlight=False,
    )
    table = Table(title="Steps")
    for column in (
        "step",
        "ran",
        "reused",
        "failed",
        "blocked",
        "not_due",
        "not_promoted",
        "mean s",
        "total s",
    ):
        table.add_column(column, justify="right" if column != "step" else "left")
    for asset, s in summary.steps.items():
        table.add_row(
            asset,
            str(s.ran),
            str(s.reused),
            str(s.failed),
            str(s.blocked),
            str(s.not_due),
            str(s.not_promoted),
            f"{s.mean_s:.2f}",
            f"{s.total_s:.2f}",
        )
    console.print(table)
    for group in summary.top_errors:
        console.print(
            f"[red]x {group.count}[/] {group.signature}\n    dates: {', '.join(group.dates)}\n    manifest: {group.example_manifest}",
            highlight=False,
        )
    if summary.gaps:
        console.print(
            f"Input gaps recorded: {len(summary.gaps)} (e.g. {summary.gaps[0]['game_date']}: {summary.gaps[0]['detail']})",
            highlight=False,
        )
    if summary.caught_up:
        console.print(
            "Caught up: " + "; ".join(f"{c['game_date']} ({c['reason']})" for c in summary.caught_up),
            highlight=False,
        )
    if summary.accuracy:
        a = summary.accuracy
        console.print(
            f"Accuracy over {int(a['dates'])} dates: MAE {a['mae_fp']:.2f} fp (naive baseline {a['baseline_mae_fp']:.2f}), "
            f"minutes MAE {a['mae_minutes']:.2f} (baseline {a['baseline_mae_minutes']:.2f})",
            highlight=False,
        )
    console.print(f"Summary: {store.describe(keys[0])}\n         {store.describe(keys[1])}", highlight=False)


def _publish_report(store: Store, graph: Graph, summary: Summary) -> None:
    """The range's HTML report beside its summary, as the Argo exit handler stores it. Best
    effort: a report that cannot be built is said, never fatal to the range."""
    from workflows.observe.report import publish_range_report

    try:
        publish_range_report(store, graph, summary.model_dump(mode="json"))
    except Exception as exc:  # the summary is the record; the report is a view of it
        err_console.print(f"report not built: {exc}", highlight=False, markup=False)


def _run_plan(
    store: Store,
    graph: Graph,
    config: PipelineConfig,
    plan: Plan,
    *,
    correlation_id: str,
    max_parallel: int | None,
    mode: Mode,
    resume: bool,
    only_groups: set[str] | None,
    reason: str | None,
    show_progress: bool,
) -> list[TaskResult]:
    """Run a plan on the local runner behind a progress bar that names each failure as it lands."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
    ) as progress:
        steps_bar = progress.add_task("step partitions", total=plan.steps_to_run)

        def on_task(result: TaskResult) -> None:
            if result.status == "reused":
                return
            progress.update(steps_bar, advance=1, total=plan.steps_to_run)
            if result.status == "failed":
                progress.console.print(
                    f"[red]failed[/] {result.label}: {result.error_type}: {(result.error or '')[:200]}",
                    highlight=False,
                )

        runner = LocalRunner(
            store,
            graph,
            config,
            correlation_id=correlation_id,
            max_parallel=max_parallel,
            mode=mode,
            on_task=on_task,
            resume=resume,
            only_groups=only_groups,
            reason=reason,
        )
        return runner.run(plan)


def _record_range(
    store: Store,
    graph: Graph,
    plan: Plan,
    results: list[TaskResult],
    *,
    backfill_id: str,
    kind: str,
    options: dict[str, Any],
    started: datetime,
    mode: Mode,
    caught_up: list[dict[str, str]],
) -> Summary:
    """The range's record: its summary, its report beside it, and the `range_finished` event."""
    summary = build_summary(
        backfill_id=backfill_id,
        kind=kind,
        plan=plan,
        results=results,
        store=store,
        options=options,
        started_at=started,
        finished_at=utc_now(),
        mode=mode,
        caught_up=caught_up,
    )
    keys = write_summary(store, summary, results)
    _publish_report(store, graph, summary)
    emit(
        store,
        "range_finished",
        correlation_id=backfill_id,
        status="failed" if summary.failed else "success",
        detail={"summary": keys[0], **summary.partitions},
    )
    _print_summary(summary, keys, store)
    return summary


def execute_range(
    *,
    store: Store,
    graph: Graph,
    config: PipelineConfig,
    start: date,
    end: date,
    kind: str,
    as_of_mode: AsOfMode = "pretip",
    as_of_ts: datetime | None = None,
    worlds: int | None = None,
    profile: str | None = None,
    season: int | None = None,
    resume: bool = True,
    force: bool = False,
    max_parallel: int | None = None,
    mode: Mode = "warm",
    dry_run: bool = False,
    show_progress: bool = True,
    annotate: Any = None,
    draft_groups: list[str] | None = None,
    reason: str | None = None,
    no_downstream: bool = False,
) -> tuple[Plan, Summary | None]:
    """Plan and run a range. The one code path for daily runs, backfills and catch-up."""
    started = utc_now()
    backfill_id = new_backfill_id(started)
    plan = make_plan(
        store,
        graph,
        config,
        start=start,
        end=end,
        as_of_mode=as_of_mode,
        as_of_ts=as_of_ts,
        worlds=worlds,
        profile=profile,
        season=season,
        resume=resume,
        force_tag=to_key_ts(started) if force else None,
        draft_groups=draft_groups,
    )
    caught_up = annotate(plan) if annotate else []
    _print_plan(plan, store, dry_run=dry_run)
    if dry_run:
        return plan, None
    options = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "as_of_mode": as_of_mode,
        "as_of_ts": as_of_ts.isoformat() if as_of_ts else None,
        "worlds": worlds,
        "profile": profile,
        "resume": resume,
        "force": force,
        "steps": list(graph.order) if len(graph.order) < len(pipeline_graph().order) else None,
        "no_downstream": no_downstream,
        "draft_groups": draft_groups,
        "reason": reason,
        "max_parallel": max_parallel or config.runner.max_parallel,
    }
    if plan.steps_to_run == 0 and not _unexpanded(plan):
        console.print("Nothing to do: every planned step already has a success manifest (resume).")
    emit(store, "range_started", correlation_id=backfill_id, detail={"kind": kind, **options})
    results = _run_plan(
        store,
        graph,
        config,
        plan,
        correlation_id=backfill_id,
        max_parallel=max_parallel,
        mode=mode,
        resume=resume,
        only_groups=set(draft_groups) if draft_groups else None,
        reason=reason,
        show_progress=show_progress,
    )
    summary = _record_range(
        store,
        graph,
        plan,
        results,
        backfill_id=backfill_id,
        kind=kind,
        options=options,
        started=started,
        mode=mode,
        caught_up=caught_up,
    )
    return plan, summary


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
        if as_of_mode not in get_args(AsOfMode):
            raise fail(f"--as-of-mode must be pretip, lock or custom, not {as_of_mode!r}")
        mode_of_as_of = cast(AsOfMode, as_of_mode)
        if runner_mode not in ("warm", "subprocess"):
            raise fail(f"--runner must be warm or subprocess, not {runner_mode!r}")
        custom = parse_as_of(as_of_ts) if as_of_ts is not None else None
        if worlds is not None and worlds <= 0:
            raise fail(f"--worlds must be positive, got {worlds}")
        if profile is not None:
            from steps.pipeline.sim_params import profile_scale

            check_token(profile, "profile")
            profile_scale(profile)
        first = parse_date(start, "--start")
        last = parse_date(end, "--end")
        if first is None:
            first = last or today_et(config)
        last = last or first
        if last < first:
            raise fail(f"--end {last} is before --start {first}")
        annotate = None
        kind = "daily" if first == last else "backfill"
        graph = pipeline_graph()
        if steps:
            graph = graph.select(steps, downstream=not no_downstream)
        elif no_downstream:
            raise fail("--no-downstream goes with --steps")
        for group in draft_group or []:
            check_token(group, "--draft-group")
        check_limits(graph, config.limits)
        target = open_store(store or default_store())
        if catch_up_days:
            first = min(first, date.fromordinal(last.toordinal() - catch_up_days))
            annotate = catch_up_annotator(last, target)
            kind = "catch-up"
        _, summary = execute_range(
            store=target,
            graph=graph,
            config=config,
            start=first,
            end=last,
            kind=kind,
            as_of_mode=mode_of_as_of,
            as_of_ts=custom,
            worlds=worlds,
            profile=profile,
            season=season,
            resume=resume,
            force=force,
            max_parallel=max_parallel,
            mode=runner_mode,  # type: ignore[arg-type]
            dry_run=dry_run,
            annotate=annotate,
            draft_groups=draft_group,
            reason=reason,
            no_downstream=no_downstream,
        )
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    if summary is not None and summary.failed:
        raise typer.Exit(1)


# ---- seed-history, demo -------------------------------------------------------------------
@app.command("seed-history")
def seed_history_cmd(
    season: int = typer.Option(..., "--season", help="Season start year, e.g. 2024 for 2024-25"),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
    seed: int = typer.Option(7, "--seed", help="Same seed, byte-identical history"),
    start: str | None = typer.Option(None, "--start", help="Only land dates from here"),
    end: str | None = typer.Option(None, "--end", help="Only land dates up to here"),
) -> None:
    """Land a deterministic, realistic season of source snapshots under landing/."""
    from synthetic.seed import seed_history

    try:
        target = open_store(store or default_store(), create=True)
        counts = seed_history(
            target,
            season,
            seed=seed,
            start=parse_date(start, "--start"),
            end=parse_date(end, "--end"),
        )
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    total = sum(counts.values())
    console.print(
        f"Landed {total} snapshots in {target.url}/landing: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        highlight=False,
    )


@app.command()
def demo(
    store: str = typer.Option(None, "--store", help=STORE_HELP),
    start: str = typer.Option("2025-01-06", "--start"),
    end: str = typer.Option("2025-01-12", "--end"),
    max_parallel: int = typer.Option(2, "--max-parallel", min=1),
) -> None:
    """Seed the season up to --end, backfill --start..--end, and say where to look."""
    from steps.runtime.partition import season_of
    from synthetic.season import season_bounds
    from synthetic.seed import seed_history

    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    assert first is not None and last is not None
    url = store or default_store()
    try:
        target = open_store(url, create=True)
        season = season_of(first)
        console.print(
            f"Seeding season {season}-{(season + 1) % 100:02d} history up to {last} into {target.url} ...",
            highlight=False,
        )
        counts = seed_history(target, season, start=season_bounds(season)[0], end=last)
        console.print(f"  {sum(counts.values())} source snapshots landed.")
        config = load_config()
        _, summary = execute_range(
            store=target,
            graph=pipeline_graph(),
            config=config,
            start=first,
            end=last,
            kind="backfill",
            max_parallel=max_parallel,
        )
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    assert summary is not None
    root = target.url
    group = next(iter(draft_groups_on(target, PUBLISHED_ASSET, last)), "<G>")
    console.print(
        "\n[bold]Where to look[/]\n"
        f"  projections (current):  {root}/current/{PUBLISHED_ASSET}/game_date=<D>/draft_group=<G>/current_run.json\n"
        f"  run outputs:            {root}/runs/<asset>/game_date=<D>/[draft_group=<G>/]run=<run_id>/\n"
        f"  manifests:              {root}/manifests/<asset>/<partition>/manifest.json\n"
        f"  backfill summary:       {root}/backfills/{summary.backfill_id}/summary.json (and report.html)\n"
        f"  try: pipeline show {PUBLISHED_ASSET} --game-date {last} --draft-group {group} --store {root}\n"
        f"       pipeline run --start {first} --end {last} --store {root}   (resume: runs nothing)",
        highlight=False,
    )
    if summary.failed:
        raise typer.Exit(1)
