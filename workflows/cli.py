"""`pipeline`: daily runs, backfills, and the operator's commands."""

from __future__ import annotations

import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from steps.runtime import layout
from steps.runtime.errors import PipelineError
from steps.runtime.events import emit
from steps.runtime.manifest import read_manifest
from steps.runtime.partition import PartitionKey, check_token, parse_as_of, parse_game_date
from steps.runtime.pointer import (
    list_history,
)
from steps.runtime.pointer import (
    promote as promote_pointer,
)
from steps.runtime.pointer import (
    rollback as rollback_pointer,
)
from steps.runtime.store import Store, open_store
from steps.runtime.timefmt import to_key_ts, utc_now
from workflows.config import PipelineConfig, load_config
from workflows.graph import Graph, check_limits, pipeline_graph
from workflows.ids import new_backfill_id
from workflows.local import LocalRunner, Mode, TaskResult
from workflows.plan import AsOfMode, Plan, make_plan, source_selections
from workflows.summary import Summary, build_summary, write_summary

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,  # help texts hold literal brackets (s3://<bucket>[/prefix]), not markup
    help="NBA projections: one partitioned DAG, run locally or on Argo.",
)
# Piped output (CI logs, files) gets a wide page instead of rich's 80 columns.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(soft_wrap=True, width=_WIDTH)
err_console = Console(stderr=True, soft_wrap=True, width=_WIDTH)

STORE_HELP = (
    "file://<dir> (embedded default) or s3://<bucket>[/prefix] (MinIO; endpoint and keys from PIPELINE_S3_*)"
)


def default_store() -> str:
    return os.environ.get("PIPELINE_STORE", f"file://{Path.cwd() / 'pipeline-store'}")


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def today_et(config: PipelineConfig) -> date:
    """Today on the slate calendar; PIPELINE_TODAY replays a past day (tests, drills)."""
    if override := os.environ.get("PIPELINE_TODAY"):
        return parse_game_date(override)
    return datetime.now(ZoneInfo(config.timezone)).date()


def _parse_date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_game_date(value)
    except PipelineError as exc:
        raise fail(f"{flag}: {exc}") from None


# ---- run ----------------------------------------------------------------------------------
def _print_plan(plan: Plan, store: Store, *, dry_run: bool) -> None:
    table = Table(title="Plan" + (" (dry run: nothing will be executed or written)" if dry_run else ""))
    for column in ("game_date", "run_id", "as of (UTC)", "to run", "skipped (why)", "run (why)"):
        table.add_column(column)
    for planned in plan.partitions:
        p = planned.partition
        nodes = plan.slate_nodes(p.game_date)
        skipped = [n for n in nodes if n.action == "skip"]
        run = [n for n in nodes if n.action == "run"]
        reasons_run = sorted({n.reason for n in run})
        table.add_row(
            p.game_date.isoformat(),
            p.run_id,
            p.as_of_iso(),
            f"{len(run)}/{len(nodes)}"
            + (f" {', '.join(n.label for n in run)}" if 0 < len(run) < len(nodes) else ""),
            f"{len(skipped)} ({skipped[0].reason})" if skipped else "0",
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
        f"{p['succeeded']} succeeded, {p['failed']} failed, {p['reused']} already done, "
        f"{p['no_slate']} without a slate; {summary.wall_s:.1f}s",
        highlight=False,
    )
    table = Table(title="Steps")
    for column in ("step", "ran", "reused", "failed", "blocked", "mean s", "total s"):
        table.add_column(column, justify="right" if column != "step" else "left")
    for asset, s in summary.steps.items():
        table.add_row(
            asset,
            str(s.ran),
            str(s.reused),
            str(s.failed),
            str(s.blocked),
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
            correlation_id=backfill_id,
            max_parallel=max_parallel,
            mode=mode,
            on_task=on_task,
            resume=resume,
            only_groups=set(draft_groups) if draft_groups else None,
            reason=reason,
        )
        results = runner.run(plan)
    finished = utc_now()
    summary = build_summary(
        backfill_id=backfill_id,
        kind=kind,
        plan=plan,
        results=results,
        store=store,
        options=options,
        started_at=started,
        finished_at=finished,
        mode=mode,
        caught_up=caught_up,
    )
    keys = write_summary(store, summary, results)
    emit(
        store,
        "range_finished",
        correlation_id=backfill_id,
        status="failed" if summary.failed else "success",
        detail={"summary": keys[0], **summary.partitions},
    )
    _print_summary(summary, keys, store)
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
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip steps with a success manifest"),
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
    from workflows.catchup import catch_up_annotator

    try:
        config = load_config(config_path)
        if as_of_mode not in ("pretip", "lock", "custom"):
            raise fail(f"--as-of-mode must be pretip, lock or custom, not {as_of_mode!r}")
        if runner_mode not in ("warm", "subprocess"):
            raise fail(f"--runner must be warm or subprocess, not {runner_mode!r}")
        custom = parse_as_of(as_of_ts) if as_of_ts is not None else None
        if worlds is not None and worlds <= 0:
            raise fail(f"--worlds must be positive, got {worlds}")
        if profile is not None:
            from steps.pipeline.slate import profile_scale

            check_token(profile, "profile")
            profile_scale(profile)
        first = _parse_date(start, "--start")
        last = _parse_date(end, "--end")
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
            as_of_mode=as_of_mode,
            as_of_ts=custom,
            worlds=worlds,
            profile=profile,
            season=season,  # type: ignore[arg-type]
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
    from workflows.seed_history import seed_history

    try:
        target = open_store(store or default_store(), create=True)
        counts = seed_history(
            target,
            season,
            seed=seed,
            start=_parse_date(start, "--start"),
            end=_parse_date(end, "--end"),
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
    from workflows.league import season_bounds, season_of
    from workflows.seed_history import seed_history

    first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
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
    group = next(iter(draft_groups_on(target, "finalize.unified", last)), "<G>")
    console.print(
        "\n[bold]Where to look[/]\n"
        f"  projections (current):  {root}/current/finalize.unified/game_date=<D>/draft_group=<G>/current_run.json\n"
        f"  run outputs:            {root}/runs/<asset>/game_date=<D>/[draft_group=<G>/]run=<run_id>/\n"
        f"  manifests:              {root}/manifests/<asset>/<partition>/manifest.json\n"
        f"  backfill summary:       {root}/backfills/{summary.backfill_id}/summary.json\n"
        f"  try: pipeline show finalize.unified --game-date {last} --draft-group {group} --store {root}\n"
        f"       pipeline run --start {first} --end {last} --store {root}   (resume: runs nothing)",
        highlight=False,
    )
    if summary.failed:
        raise typer.Exit(1)


# ---- status, report ----------------------------------------------------------------------
@app.command()
def status(
    start: str | None = typer.Option(None, "--start"),
    end: str | None = typer.Option(None, "--end"),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Partitions by steps: status, duration, the current pointer and the latest attempt
    (flagged when a rerun made after the pointer's attempt failed)."""
    from steps.runtime.manifest import Manifest
    from workflows.status import GLYPHS, collect, error_line, glyphs, slate_steps

    try:
        target = open_store(store or default_store())
        graph = pipeline_graph()
        views = collect(target, graph, start=_parse_date(start, "--start"), end=_parse_date(end, "--end"))
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    if not views:
        console.print("No runs in this range.")
        return

    def group_of(manifest: Manifest) -> str:
        group = manifest.partition.draft_group_id
        return f" (draft group {group})" if group else ""

    table = Table(title="Partitions x steps")
    for column in ("game_date", "run", "status", "steps", "seconds", "pointer", "latest", "failed (why)"):
        table.add_column(column, overflow="fold")
    newer = []  # dates whose latest run is not the one shown: named under the table
    for view in views:
        failed = [
            f"{a}: {s.manifest.error.type}{group_of(s.manifest)}"
            for a, s in view.steps.items()
            if s.status == "failed" and s.manifest and s.manifest.error
        ]
        colour = {"success": "green", "failed": "red"}.get(view.status, "yellow")
        pointer = (
            f"v{view.pointer.seq} {'(this run)' if view.pointer.run_id == view.run_id else view.pointer.run_id}"
            if view.pointer
            else "-"
        )
        latest = ""
        if view.latest is not None and (view.latest_failed or view.latest.run_id != view.run_id):
            latest = "[red]✗ failed[/]" if view.latest_failed else "newer run"
            newer.append(view)
        table.add_row(
            view.game_date.isoformat(),
            view.run_id,
            f"[{colour}]{view.status}[/]",
            glyphs(view, slate_steps(graph)),
            f"{view.duration_s:.1f}",
            pointer,
            latest,
            "; ".join(failed),
        )
    console.print(table)
    for view in newer:
        assert view.latest is not None
        head = f"{view.game_date.isoformat()}: latest run {view.latest.run_id} (attempt {view.latest.attempt_id or '-'})"
        shown = (
            f"the current pointer (v{view.pointer.seq}) still names run {view.pointer.run_id}"
            f" (attempt {view.pointer.attempt_id or '-'})"
            if view.pointer
            else f"shown: run {view.run_id}"
        )
        if not view.latest_failed:
            console.print(f"· {head} has no failed step; {shown}", highlight=False, markup=False)
            continue
        console.print(f"[red]! {head} failed; {shown}[/]", highlight=False)
        for asset, manifest in view.latest.failures:
            console.print(
                f"    {asset}: {error_line(manifest)}{group_of(manifest)}", highlight=False, markup=False
            )
    console.print(
        "steps: " + " ".join(slate_steps(graph)) + "\n" + "  ".join(f"{g} {k}" for k, g in GLYPHS.items()),
        highlight=False,
    )


@app.command()
def report(
    backfill: str | None = typer.Option(
        None, "--backfill", help="A backfill id (backfills/<id>/summary.json)"
    ),
    start: str | None = typer.Option(None, "--start"),
    end: str | None = typer.Option(None, "--end"),
    output: Path = typer.Option(Path("report.html"), "-o", "--output"),
    open_browser: bool = typer.Option(False, "--open", help="Open the report in a browser"),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """One self-contained HTML page: timeline, durations, failures by cause, gaps, pointers."""
    from workflows.report import build_report, runs_of_summary
    from workflows.status import collect

    try:
        target = open_store(store or default_store())
        graph = pipeline_graph()
        if backfill:
            summary = target.get_json(
                f"{layout.backfill_prefix(check_token(backfill, 'backfill id'))}summary.json"
            )
            views = collect(target, graph, runs=runs_of_summary(summary))
            title = f"Backfill {backfill}: {summary['range']['start']} to {summary['range']['end']}"
        else:
            first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
            if first is None and last is None:
                raise PipelineError("give --backfill <id>, or a range with --start/--end")
            summary = None
            views = collect(target, graph, start=first, end=last)
            title = f"Runs {first or '...'} to {last or '...'}"
        page = build_report(target, graph, views, title=title, summary=summary)
    except (PipelineError, ValueError, KeyError) as exc:
        raise fail(f"cannot build the report: {exc}") from None
    output.write_text(page)
    console.print(f"wrote {output} ({len(page) // 1024} KB, works offline)", highlight=False)
    if open_browser:
        import webbrowser

        webbrowser.open(output.resolve().as_uri())


# ---- show, promote, rollback -------------------------------------------------------------
GROUP_HELP = "The draft group, for a step with one partition per draft group"


def draft_groups_on(target: Store, asset: str, game_date: date) -> list[str]:
    """The draft groups an asset has partitions for on a date (one listing)."""
    prefix = layout.manifest_date_prefix(asset, game_date)
    return sorted(d[len(prefix) :].strip("/").removeprefix("draft_group=") for d in target.list_dirs(prefix))


def _scope(target: Store, asset: str, game_date: date, draft_group: str | None) -> PartitionKey:
    """The asset's partition for a date, whatever its run: its month, its date, or one of its
    draft groups."""
    from steps.registry import get_step

    shape = get_step(asset).shape
    if "draft_group" in shape.keys and not draft_group:
        found = draft_groups_on(target, asset, game_date)
        raise PipelineError(
            f"{asset} has one partition per draft group: give --draft-group"
            + (f" (on {game_date}: {', '.join(found)})" if found else "")
        )
    if "draft_group" not in shape.keys and draft_group:
        raise PipelineError(f"{asset} is not per draft group; drop --draft-group")
    if shape.name == "month":
        return PartitionKey(month=f"{game_date:%Y-%m}")
    return PartitionKey(
        game_date=game_date, draft_group_id=check_token(draft_group, "--draft-group") if draft_group else None
    )


def _resolve_run(target: Store, asset: str, scope: PartitionKey, run_id: str | None) -> PartitionKey:
    """The partition with its run: the one given, else the current pointer's, else the newest."""
    from steps.registry import get_step

    if not get_step(asset).shape.run_scoped:
        return scope
    if run_id:
        return scope.model_copy(update={"run_id": check_token(run_id, "run_id")})
    from steps.runtime.pointer import current_run

    pointer = current_run(target, layout.pointer_scope(asset, scope))
    if pointer is not None:
        return scope.model_copy(update={"run_id": pointer.run_id})
    runs = [
        d.rstrip("/").split("run=")[-1] for d in target.list_dirs(layout.manifest_scope_prefix(asset, scope))
    ]
    if not runs:
        raise PipelineError(f"no manifests for {asset} {scope.describe()}")
    return scope.model_copy(update={"run_id": sorted(runs)[-1]})


@app.command()
def show(
    asset: str = typer.Argument(..., help="e.g. finalize.unified"),
    game_date: str = typer.Option(..., "--game-date"),
    run_id: str | None = typer.Option(
        None, "--run-id", help="Default: the current pointer's run, else the newest"
    ),
    draft_group: str | None = typer.Option(None, "--draft-group", help=GROUP_HELP),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the raw manifest"),
) -> None:
    """Print a step's manifest readably."""
    try:
        target = open_store(store or default_store())
        day = _parse_date(game_date, "--game-date")
        assert day is not None
        key = _resolve_run(target, asset, _scope(target, asset, day, draft_group), run_id)
        rid = key.run_id or "-"
        manifest = read_manifest(target, asset, key)
        if manifest is None:
            raise PipelineError(f"no manifest for {asset} {key.describe()} run {rid}")
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        console.print_json(manifest.model_dump_json())
        return
    colour = {"success": "green", "failed": "red", "skipped": "yellow"}[manifest.status]
    console.print(
        f"[bold]{manifest.asset}[/] {key.describe()} run [bold]{rid}[/]: [{colour}]{manifest.status}[/] in {manifest.timing.duration_s:.2f}s (attempt {manifest.attempt})",
        highlight=False,
    )
    console.print(
        f"  as of {manifest.partition.as_of_iso()}  correlation {manifest.correlation_id}  code {manifest.environment.code_version} git {manifest.environment.git_sha or '-'}",
        highlight=False,
    )
    if manifest.error:
        console.print(f"  [red]error[/] {manifest.error.type}: {manifest.error.message}", highlight=False)
    table = Table(title="inputs")
    for column in ("name", "kind", "path / snapshot", "rows"):
        table.add_column(column)
    for i in manifest.inputs:
        table.add_row(
            i.name,
            i.kind,
            i.path
            + (f" @ {i.snapshot_ts}" if i.snapshot_ts else "")
            + (f" (run {i.run_id})" if i.run_id else ""),
            str(i.row_count if i.row_count is not None else ""),
        )
    console.print(table)
    table = Table(title="outputs")
    for column in ("name", "path", "rows", "content hash"):
        table.add_column(column)
    for o in manifest.outputs:
        table.add_row(o.name, o.path, str(o.row_count), o.content_hash[:19])
    console.print(table)
    for c in manifest.checks:
        mark = (
            "[green]ok[/]"
            if c.passed
            else ("[red]FAIL[/]" if c.severity == "critical" else "[yellow]warn[/]")
        )
        console.print(f"  {mark} {c.name}: {c.detail[:200]}", highlight=False)
    for g in manifest.gaps:
        console.print(f"  [yellow]gap[/] {g.source} ({g.policy}): {g.detail}", highlight=False)
    if manifest.metrics:
        console.print(
            "  metrics: " + ", ".join(f"{k}={v:g}" for k, v in sorted(manifest.metrics.items())),
            highlight=False,
        )


@app.command()
def promote(
    asset: str = typer.Argument("finalize.unified"),
    game_date: str = typer.Option(..., "--game-date"),
    run_id: str = typer.Option(..., "--run-id"),
    reason: str = typer.Option(..., "--reason", help="Recorded in the pointer's history"),
    force: bool = typer.Option(False, "--force", help="Allow moving to an older as-of"),
    draft_group: str | None = typer.Option(None, "--draft-group", help=GROUP_HELP),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Point current at a run (compare-and-swap; needs a success manifest)."""
    try:
        target = open_store(store or default_store())
        day = _parse_date(game_date, "--game-date")
        assert day is not None
        scope = _scope(target, asset, day, draft_group)
        pointer = promote_pointer(
            target,
            layout.pointer_scope(asset, scope),
            asset=asset,
            key=scope.model_copy(update={"run_id": check_token(run_id, "run_id")}),
            reason=reason,
            force=force,
        )
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    console.print(
        f"{asset} {scope.describe()}: current is run {pointer.run_id} (version {pointer.seq})",
        highlight=False,
    )


@app.command()
def rollback(
    asset: str = typer.Argument("finalize.unified"),
    game_date: str = typer.Option(..., "--game-date"),
    to_version: int | None = typer.Option(
        None, "--to-version", help="History version to restore (default: the previous one)"
    ),
    reason: str = typer.Option(..., "--reason"),
    draft_group: str | None = typer.Option(None, "--draft-group", help=GROUP_HELP),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Make an earlier pointer version current again (a new version; history is kept)."""
    from steps.runtime.pointer import current_run

    try:
        target = open_store(store or default_store())
        day = _parse_date(game_date, "--game-date")
        assert day is not None
        where = _scope(target, asset, day, draft_group)
        scope = layout.pointer_scope(asset, where)
        current = current_run(target, scope)
        if current is None:
            raise PipelineError(f"{asset} {where.describe()} has no current pointer to roll back")
        version = to_version or (current.previous.seq if current.previous else None)
        if version is None:
            raise PipelineError(f"{asset} {where.describe()} has only one version; nothing to roll back to")
        pointer = rollback_pointer(target, scope, to_seq=version, reason=reason)
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    console.print(
        f"{asset} {where.describe()}: rolled back to run {pointer.run_id} (now version {pointer.seq})",
        highlight=False,
    )
    for version_ in list_history(target, scope)[-5:]:
        console.print(
            f"  v{version_.seq} {version_.run_id} by {version_.promoted_by}: {version_.reason}",
            highlight=False,
        )


# The cluster commands register themselves on `app`.
import workflows.cli_argo  # noqa: E402, F401

if __name__ == "__main__":
    # Under `python -m` this file is __main__; run the instance the commands registered on.
    from workflows.cli import app as registered_app

    registered_app()


@app.command()
def verify(
    game_date: str = typer.Option(..., "--game-date", help="The promoted date to recompute"),
    asset: str | None = typer.Option(None, "--asset", help="Only this step (default: every step of the run)"),
    draft_group: str | None = typer.Option(None, "--draft-group", help=GROUP_HELP),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
    keep_scratch: bool = typer.Option(False, "--keep-scratch", help="Keep the recomputed files"),
) -> None:
    """Recompute a promoted partition in a scratch prefix and compare every output's content
    hash with its manifest's. Exits 1 naming each step and output that differs."""
    from workflows.verify import verify as verify_partition

    try:
        target = open_store(store or default_store())
        day = _parse_date(game_date, "--game-date")
        assert day is not None
        findings, scratch = verify_partition(
            target, pipeline_graph(), day, asset=asset, draft_group=draft_group, keep_scratch=keep_scratch
        )
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    table = Table("step", "partition", "output", "verdict", "detail")
    for f in findings:
        style = "green" if f.verdict == "same" else "red"
        table.add_row(f.step, f.partition, f.output, f"[{style}]{f.verdict}[/]", f.detail)
    console.print(table)
    differ = [f for f in findings if f.verdict != "same"]
    where = f"scratch kept at {target.describe(scratch)}" if keep_scratch else "scratch removed"
    if differ:
        err_console.print(
            f"{len(differ)} of {len(findings)} outputs differ from their manifests ({where})", highlight=False
        )
        raise typer.Exit(1)
    console.print(f"verified: {len(findings)} outputs recompute to their manifests' hashes ({where})")


@app.command()
def gc(
    store: str = typer.Option(None, "--store", help=STORE_HELP),
    keep_days: float = typer.Option(
        30, "--keep-days", help="Keep pointer versions current within, and runs newer than, this many days"
    ),
    in_flight_hours: float = typer.Option(
        48, "--in-flight-hours", help="A range started within this many hours and not finished blocks gc"
    ),
    delete: bool = typer.Option(False, "--delete", help="Delete (default: a dry run that only lists)"),
) -> None:
    """Delete run prefixes and superseded attempts that no pointer or referenced manifest names
    (docs/runbooks/gc.md). A dry run unless --delete; refuses (exit 2) while a range is in flight."""
    from workflows.gc import delete_candidates, plan_gc

    try:
        target = open_store(store or default_store())
        plan = plan_gc(target, keep_days=keep_days, in_flight_hours=in_flight_hours)
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    title = "Garbage" + ("" if delete else " (dry run: nothing is deleted; --delete deletes)")
    table = Table("asset", "partition", "run", "attempts", "objects", "bytes", "why", title=title)
    for c in plan.candidates:
        table.add_row(
            c.asset, c.partition, c.run_id or "-", ", ".join(c.attempts), str(c.objects), f"{c.size:,}", c.why
        )
    console.print(table)
    console.print(
        f"{len(plan.candidates)} prefixes, {plan.total_objects} objects, {plan.total_bytes:,} bytes "
        f"unreferenced; {len(plan.referenced)} runs kept",
        highlight=False,
    )
    if delete:
        try:
            deleted = delete_candidates(target, plan, in_flight_hours=in_flight_hours)
        except PipelineError as exc:
            raise fail(str(exc)) from None
        console.print(f"deleted {deleted} objects", highlight=False)
