"""`pipeline seed-history` and `pipeline demo`: land synthetic source history and run the demo range."""

from __future__ import annotations

import typer

from steps.pipeline.finalize import PUBLISHED_ASSET
from steps.runtime.errors import PipelineError
from steps.runtime.store import open_store
from workflows.cli.app import (
    STORE_HELP,
    app,
    console,
    date_range,
    default_store,
    draft_groups_on,
    fail,
    parse_date,
)
from workflows.cli.range_exec import execute_range
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph
from workflows.dag.model import RangeRequest


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

    first, last = date_range(start, end)
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
        _, summary = execute_range(
            RangeRequest(start=first, end=last, max_parallel=max_parallel),
            store=target,
            graph=pipeline_graph(),
            config=load_config(),
            kind="backfill",
        )
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    assert summary is not None
    root = target.url
    group = next(iter(draft_groups_on(target, PUBLISHED_ASSET, last)), "<G>")
    console.print("\n[bold]Where to look[/]")
    console.print(  # no markup: the paths hold brackets (an optional segment)
        f"  projections (current):  {root}/current/{PUBLISHED_ASSET}/game_date=<D>/draft_group=<G>/current_run.json\n"
        f"  run outputs:            {root}/runs/<asset>/game_date=<D>/[draft_group=<G>/]run=<run_id>/\n"
        f"  manifests:              {root}/manifests/<day>/<asset>,<partition>/attempt=<id>,<...status...>.json\n"
        f"  backfill summary:       {root}/backfills/{summary.backfill_id}/summary.json (and report.html)\n"
        f"  try: pipeline show {PUBLISHED_ASSET} --game-date {last} --draft-group {group} --store {root}\n"
        f"       pipeline run --start {first} --end {last} --store {root}   (resume: runs nothing)",
        highlight=False,
        markup=False,
    )
    if summary.failed:
        raise typer.Exit(1)
