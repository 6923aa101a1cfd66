"""`python -m steps <asset> --game-date ... --run-id ... --as-of ... --store ...`

Exit codes: 0 success (or already succeeded, or not due), 1 the step failed (a failed
manifest was written, or the store failed mid-step), 2 bad input before any manifest could
be written (never retried), 3 the store did not answer (retried).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from steps.runtime.errors import PipelineError, StoreUnavailable
from steps.runtime.manifest import Manifest, read_manifest
from steps.runtime.partition import Partition
from steps.runtime.step import execute
from steps.runtime.store import open_store

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_STORE_UNAVAILABLE = 1, 2, 3

app = typer.Typer(add_completion=False, help="Run one pipeline step for one partition.")


def _write_outputs(directory: Path, manifest: Manifest, *, reused: bool) -> None:
    """Files Argo turns into output parameters, so its UI shows each step's outcome."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "status").write_text(manifest.status)
    (directory / "metrics.json").write_text(json.dumps(manifest.metrics, sort_keys=True))
    summary = {
        "asset": manifest.asset,
        "status": manifest.status,
        "reused": reused,
        "duration_s": manifest.timing.duration_s,
        "outputs": {o.name: o.row_count for o in manifest.outputs},
        "gaps": [g.detail for g in manifest.gaps],
        "error": manifest.error.message if manifest.error else None,
    }
    (directory / "summary.json").write_text(json.dumps(summary, sort_keys=True))


@app.command()
def run(
    asset: str = typer.Argument(..., help="The asset (step) to produce, e.g. minutes.score"),
    game_date: str = typer.Option(..., "--game-date", help="ET slate date, YYYY-MM-DD"),
    run_id: str = typer.Option(..., "--run-id"),
    as_of: str = typer.Option(..., "--as-of", help="UTC as-of timestamp, e.g. 2025-01-15T22:00:00Z"),
    store: str = typer.Option(..., "--store", help="file://<dir> or s3://<bucket>[/prefix]"),
    correlation_id: str = typer.Option("adhoc", "--correlation-id"),
    season: int | None = typer.Option(None, "--season"),
    draft_group_id: str | None = typer.Option(None, "--draft-group-id"),
    profile: str | None = typer.Option(None, "--profile"),
    worlds: int | None = typer.Option(None, "--worlds"),
    orchestrator_run_id: str | None = typer.Option(None, "--orchestrator-run-id"),
    attempt: int = typer.Option(1, "--attempt"),
    outputs_dir: Path | None = typer.Option(None, "--outputs-dir"),
    force: bool = typer.Option(False, "--force", help="Recompute even if a success manifest exists"),
) -> None:
    from steps.registry import get_step

    try:
        spec = get_step(asset)
        partition = Partition.build(
            game_date=game_date,
            run_as_of_ts=as_of,
            run_id=run_id,
            season=season,
            draft_group_id=draft_group_id,
            profile=profile,
            worlds=worlds,
        )
        target = open_store(store)
        existing = None if force else read_manifest(target, asset, partition.key)
    except StoreUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_STORE_UNAVAILABLE) from None
    except PipelineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if (
        existing is not None
        and existing.status == "success"
        and spec.rerun_if
        and spec.rerun_if(target, partition)
    ):
        typer.echo(
            f"{asset} {partition.segments()}: success manifest exists but its result is missing; rerunning"
        )
        existing = None
    if existing is not None and existing.status == "success":
        typer.echo(f"{asset} {partition.segments()}: success manifest exists; skipping")
        if outputs_dir:
            _write_outputs(outputs_dir, existing, reused=True)
        return
    manifest = execute(
        spec,
        partition,
        target,
        correlation_id=correlation_id,
        orchestrator_run_id=orchestrator_run_id,
        attempt=attempt,
    )
    if outputs_dir:
        _write_outputs(outputs_dir, manifest, reused=False)
    line = f"{asset} {partition.segments()}: {manifest.status} in {manifest.timing.duration_s:.2f}s"
    if manifest.gaps:
        line += f" (gaps: {'; '.join(g.detail for g in manifest.gaps)})"
    typer.echo(line)
    if manifest.status == "failed":
        assert manifest.error is not None
        typer.echo(f"error: {manifest.error.type}: {manifest.error.message}", err=True)
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (used by `__main__` and the warm worker)."""
    try:
        # Without standalone mode click returns an Exit's code instead of raising it.
        result = app(args=argv if argv is not None else sys.argv[1:], standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return int(exc.code or 0)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return 2
        raise
    return result if isinstance(result, int) else 0
