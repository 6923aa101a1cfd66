"""One range from plan to record: plan it, run it on the local runner, write its summary and report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from steps.runtime.events import emit
from steps.runtime.store import Store
from steps.runtime.timefmt import to_key_ts, utc_now
from workflows.cli.app import console, err_console
from workflows.cli.range_print import print_plan, print_summary, unexpanded
from workflows.dag.config import PipelineConfig
from workflows.dag.graph import Graph, pipeline_graph
from workflows.dag.ids import new_backfill_id
from workflows.dag.model import Plan, RangeRequest
from workflows.dag.outcome import TaskResult
from workflows.dag.plan import make_plan
from workflows.local.runner import LocalRunner, Mode
from workflows.observe.summary import Summary, build_summary, write_summary


def _publish_report(store: Store, graph: Graph, summary: Summary) -> None:
    """The range's HTML report beside its summary, as the Argo exit handler stores it. Best
    effort: a report that cannot be built is said, never fatal to the range."""
    from workflows.observe.report import publish_range_report

    try:
        publish_range_report(store, graph, summary.model_dump(mode="json"))
    except Exception as exc:  # the summary is the record; the report is a view of it
        err_console.print(f"report not built: {exc}", highlight=False, markup=False)


def _run_plan(runner: LocalRunner, plan: Plan, *, show_progress: bool) -> list[TaskResult]:
    """Run a plan behind a progress bar that names each failure as it lands."""
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

        runner.on_task = on_task
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
    print_summary(summary, keys, store)
    return summary


def execute_range(
    request: RangeRequest,
    *,
    store: Store,
    graph: Graph,
    config: PipelineConfig,
    kind: str,
    mode: Mode = "warm",
    dry_run: bool = False,
    show_progress: bool = True,
    annotate: Callable[[Plan], list[dict[str, str]]] | None = None,
) -> tuple[Plan, Summary | None]:
    """Plan and run a range. The one code path for daily runs, backfills and catch-up."""
    started = utc_now()
    backfill_id = new_backfill_id(started)
    plan = make_plan(
        store,
        graph,
        config,
        start=request.start,
        end=request.end,
        as_of_mode=request.as_of_mode,
        as_of_ts=request.as_of_ts,
        worlds=request.worlds,
        profile=request.profile,
        season=request.season,
        resume=request.resume,
        force_tag=to_key_ts(started) if request.force else None,
        draft_groups=request.draft_groups,
        remember=not dry_run,
    )
    caught_up = annotate(plan) if annotate else []
    print_plan(plan, store, dry_run=dry_run)
    if dry_run:
        return plan, None
    chosen = list(graph.order) if len(graph.order) < len(pipeline_graph().order) else None
    options = request.record(chosen, config.runner.max_parallel)
    if plan.steps_to_run == 0 and not unexpanded(plan):
        console.print("Nothing to do: every planned step already has a success manifest (resume).")
    emit(store, "range_started", correlation_id=backfill_id, detail={"kind": kind, **options})
    runner = LocalRunner(
        store,
        graph,
        config,
        correlation_id=backfill_id,
        max_parallel=request.max_parallel,
        mode=mode,
        resume=request.resume,
        only_groups=set(request.draft_groups) if request.draft_groups else None,
        reason=request.reason,
    )
    results = _run_plan(runner, plan, show_progress=show_progress)
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
