"""`pipeline status`, `report` and `verify`: what ran, what failed and why, and whether it repeats."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from steps.runtime import layout
from steps.runtime.errors import PipelineError
from steps.runtime.partition import check_token
from steps.runtime.store import open_store
from workflows.cli.app import (
    GROUP_HELP,
    STORE_HELP,
    app,
    console,
    default_store,
    err_console,
    fail,
    parse_date,
)
from workflows.dag.graph import Graph, pipeline_graph

if TYPE_CHECKING:  # the command imports these itself, so `--help` stays quick
    from steps.runtime.manifest import Manifest
    from workflows.observe.status import PartitionView


# ---- status, report ----------------------------------------------------------------------
@app.command()
def status(
    start: str | None = typer.Option(None, "--start"),
    end: str | None = typer.Option(None, "--end"),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Partitions by steps: status, duration, the current pointer and the latest attempt
    (flagged when a rerun made after the pointer's attempt failed)."""
    from workflows.observe.status import GLYPHS, collect, slate_steps

    try:
        target = open_store(store or default_store())
        graph = pipeline_graph()
        views = collect(target, graph, start=parse_date(start, "--start"), end=parse_date(end, "--end"))
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    if not views:
        console.print("No runs in this range.")
        return

    newer = _status_table(views, graph)
    for view in newer:
        _print_newer(view)
    console.print(
        "steps: " + " ".join(slate_steps(graph)) + "\n" + "  ".join(f"{g} {k}" for k, g in GLYPHS.items()),
        highlight=False,
    )


def _group_of(manifest: Manifest) -> str:
    group = manifest.partition.draft_group_id
    return f" (draft group {group})" if group else ""


def _status_table(views: list[PartitionView], graph: Graph) -> list[PartitionView]:
    """Print the partitions x steps table; return the views whose latest run is not the one shown."""
    from workflows.observe.status import glyphs, slate_steps

    table = Table(title="Partitions x steps")
    for column in ("game_date", "run", "status", "steps", "seconds", "pointer", "latest", "failed (why)"):
        table.add_column(column, overflow="fold")
    newer = []
    for view in views:
        failed = [
            f"{a}: {s.manifest.error.type}{_group_of(s.manifest)}"
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
    return newer


def _print_newer(view: PartitionView) -> None:
    """Name a date's latest run under the table, with its failures if it failed."""
    from workflows.observe.status import error_line

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
        return
    console.print(f"[red]! {head} failed; {shown}[/]", highlight=False)
    for asset, manifest in view.latest.failures:
        console.print(
            f"    {asset}: {error_line(manifest)}{_group_of(manifest)}", highlight=False, markup=False
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
    from workflows.observe.report import build_report, range_report
    from workflows.observe.status import collect

    try:
        target = open_store(store or default_store())
        graph = pipeline_graph()
        if backfill:
            summary = target.get_json(
                layout.backfill_key(check_token(backfill, "backfill id"), layout.SUMMARY_FILE)
            )
            page = range_report(target, graph, summary)
        else:
            first, last = parse_date(start, "--start"), parse_date(end, "--end")
            if first is None and last is None:
                raise PipelineError("give --backfill <id>, or a range with --start/--end")
            views = collect(target, graph, start=first, end=last)
            title = f"Runs {first or '...'} to {last or '...'}"
            page = build_report(target, graph, views, title=title, summary=None)
    except (PipelineError, ValueError, KeyError) as exc:
        raise fail(f"cannot build the report: {exc}") from None
    output.write_text(page)
    console.print(f"wrote {output} ({len(page) // 1024} KB, works offline)", highlight=False)
    if open_browser:
        import webbrowser

        webbrowser.open(output.resolve().as_uri())


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
    from workflows.observe.verify import verify as verify_partition

    try:
        target = open_store(store or default_store())
        day = parse_date(game_date, "--game-date")
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
