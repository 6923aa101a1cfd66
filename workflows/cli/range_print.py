"""How a range reads on the terminal: its plan before it runs and its summary after."""

from __future__ import annotations

from rich.table import Table

from steps.runtime.partition import PartitionKey
from steps.runtime.store import Store
from workflows.cli.app import console
from workflows.dag.model import Plan
from workflows.dag.plan import source_selections
from workflows.observe.summary import Summary


def print_plan(plan: Plan, store: Store, *, dry_run: bool) -> None:
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
    console.print(partitions_line(plan), highlight=False)
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


def partitions_line(plan: Plan) -> str:
    """Partitions per asset, deduplicated across the range: `ingest.schedule 1 (2025-01)`."""
    counts: dict[str, list[str]] = {}
    for node in plan.nodes.values():
        counts.setdefault(node.asset, []).append(node.partition.describe())
    pending = [f"draft groups of {k.game_date} when dk.salaries has run" for k in unexpanded(plan)]
    parts = [
        f"{asset} {len(names)}" + (f" ({names[0]})" if len(names) == 1 else "")
        for asset, names in counts.items()
    ]
    return "Partitions by step: " + ", ".join(parts) + ("; " + "; ".join(pending) if pending else "")


def unexpanded(plan: Plan) -> list[PartitionKey]:
    wanted = any(plan.graph.specs[a].shape.name == "draft_group" for a in plan.graph.order)
    return [p.partition.key for p in plan.partitions if wanted and p.partition.key not in plan.draft_groups]


def print_summary(summary: Summary, keys: tuple[str, str], store: Store) -> None:
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
