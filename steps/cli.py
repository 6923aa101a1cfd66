"""`python -m steps <asset> --game-date ... --run-id ... --as-of ... --store ...`

Exit codes (steps.runtime.errors): 0 success (or reused, not_due, not_promoted); 1 the step
failed in a way a retry may cure; 2 bad input or a deterministic failure (a missing input, a
corrupt object, a broken contract, a failed critical check, a run id already used by another
partition): never retried; 3 the store did not answer (retried). A failed run always leaves a
failed manifest where the store allows. `--force` recomputes into a new attempt prefix.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import typer

from steps.runtime.errors import (
    EXIT_FAILED,
    EXIT_NOT_RETRYABLE,
    EXIT_STORE_UNAVAILABLE,
    IdentityMismatch,
    InvalidPartition,
    ManifestError,
    PipelineError,
    PreconditionFailed,
    StoreError,
    StoreUnavailable,
)
from steps.runtime.inputs import draft_groups
from steps.runtime.manifest import ErrorRecord, Manifest, read_manifest, record_of
from steps.runtime.partition import Partition, check_token
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.step import execute
from steps.runtime.store import Store, open_store
from steps.runtime.termination import report_termination

# Left in --outputs-dir by a run that exits 2. A packed pod's emissary runs a container's command
# again on any non-zero exit (cmd/argoexec/commands/emissary.go: `retry.OnError` with a predicate
# that is always true), in the same pod and so beside the same directory; the mark makes each
# such run end at once, as the local runner and the unpacked retryStrategy do not retry exit 2.
NOT_RETRYABLE_MARK = "not-retryable"

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,  # help texts hold literal brackets (s3://<bucket>[/prefix])
    help="Run one pipeline step for one partition.",
)


def _write_outputs(directory: Path, manifest: Manifest, store: Store, *, reused: bool) -> None:
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
        # Pod links cannot read a pod's labels (docs/argo-rules.md §2), so the node's own
        # outputs are where the Argo UI says which manifest this step wrote.
        "manifest": record_of(manifest)[0],
    }
    (directory / "summary.json").write_text(json.dumps(summary, sort_keys=True))
    if manifest.asset == DRAFT_GROUP_SOURCE[0] and manifest.status == "success":
        # The list Argo fans the slate's draft-group steps out over (`withParam`).
        (directory / "draft_groups.json").write_text(json.dumps(draft_groups(store, manifest.partition)))


def exit_code(error: ErrorRecord) -> int:
    """How a failed manifest ends the process, so both runners retry only what may recover."""
    if error.type in (StoreUnavailable.__name__, StoreError.__name__):
        return EXIT_STORE_UNAVAILABLE
    return EXIT_FAILED if error.retryable else EXIT_NOT_RETRYABLE


@app.command()
def run(
    asset: str = typer.Argument(..., help="The asset (step) to produce, e.g. minutes.score"),
    game_date: str | None = typer.Option(None, "--game-date", help="ET slate date, YYYY-MM-DD"),
    month: str | None = typer.Option(None, "--month", help="YYYY-MM, for a month-shaped step"),
    run_id: str | None = typer.Option(None, "--run-id", help="The run (every run-scoped step)"),
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
    force: bool = typer.Option(
        False, "--force/--no-force", help="Recompute into a fresh attempt even if a success manifest exists"
    ),
    attempt_id: str | None = typer.Option(
        None, "--attempt-id", help="Name this attempt (default: a new one); outputs go under it"
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why this run is made (kept in the manifest)"),
) -> None:
    from steps.registry import get_step

    if outputs_dir is not None and (outputs_dir / NOT_RETRYABLE_MARK).exists():
        _fail(
            f"{asset}: not run again: its run before this one, in this pod, failed in a way a retry "
            "cannot cure (its manifest and outputs stand)",
            EXIT_NOT_RETRYABLE,
        )
    try:
        spec = get_step(asset)
        if game_date is None and month is None:
            raise InvalidPartition(f"{asset} needs --game-date (or --month for a month-shaped step)")
        partition = Partition.build(
            shape=spec.shape.name,
            game_date=game_date if game_date is not None else f"{month}-01",
            month=month,
            run_as_of_ts=as_of,
            run_id=run_id,
            season=season,
            draft_group_id=draft_group_id,
            profile=profile,
            worlds=worlds,
        )
        if attempt_id is not None:
            check_token(attempt_id, "attempt_id")
        target = open_store(store)
        existing = _existing(target, asset, partition)
    except StoreUnavailable as exc:
        _fail(f"{asset}: {exc}", EXIT_STORE_UNAVAILABLE)
    except PipelineError as exc:
        _fail(f"{asset}: {exc}", EXIT_NOT_RETRYABLE, outputs_dir)
    if existing is not None and existing.status == "success" and not force:
        if spec.rerun_if and spec.rerun_if(target, partition):
            typer.echo(
                f"{asset} {partition.segments()}: success manifest exists but its result is missing; rerunning"
            )
        else:
            typer.echo(f"{asset} {partition.segments()}: success manifest exists; reused")
            if outputs_dir:
                _write_outputs(outputs_dir, existing, target, reused=True)
            return
    try:
        manifest = execute(
            spec,
            partition,
            target,
            correlation_id=correlation_id,
            orchestrator_run_id=orchestrator_run_id,
            attempt=attempt,
            attempt_id=attempt_id,
            reason=reason or None,  # "" is what a daily run on Argo passes
        )
    except StoreError as exc:  # not even a failed manifest could be written
        _fail(f"{asset} {partition.describe()}: the store failed: {exc}", EXIT_STORE_UNAVAILABLE)
    except PreconditionFailed as exc:  # an attempt id used twice: its record stays as it was
        _fail(
            f"{asset} {partition.describe()}: attempt {attempt_id} was made before: {exc}",
            EXIT_NOT_RETRYABLE,
            outputs_dir,
        )
    if outputs_dir:
        _write_outputs(outputs_dir, manifest, target, reused=False)
    line = f"{asset} {partition.segments()}: {manifest.status} in {manifest.timing.duration_s:.2f}s"
    if manifest.gaps:
        line += f" (gaps: {'; '.join(g.detail for g in manifest.gaps)})"
    typer.echo(line)
    if manifest.status == "failed":
        assert manifest.error is not None
        _fail(
            f"{asset} {partition.describe()}: {manifest.error.type}: {manifest.error.message}",
            exit_code(manifest.error),
            outputs_dir,
        )


def _existing(store: Store, asset: str, partition: Partition) -> Manifest | None:
    """The run's manifest when it is this very partition. A corrupt one is rewritten by this
    attempt; one made for another partition under the same run id is refused."""
    try:
        existing = read_manifest(store, asset, partition.key)
    except ManifestError as exc:
        typer.echo(f"{asset} {partition.segments()}: {exc}; rerunning to rewrite it", err=True)
        return None
    if existing is not None and (differ := existing.partition.differences(partition)):
        made, asked = existing.partition.model_dump(mode="json"), partition.model_dump(mode="json")
        detail = "; ".join(f"{name} {made[name]!r}, asked {asked[name]!r}" for name in differ)
        raise IdentityMismatch(
            f"run {partition.run_id} of {asset} {partition.describe()} already exists for another "
            f"partition (made with {detail}); a run id names one partition: use a new run id"
        )
    return existing


def _fail(message: str, code: int, outputs_dir: Path | None = None) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    if code == EXIT_NOT_RETRYABLE and outputs_dir is not None:
        outputs_dir.mkdir(parents=True, exist_ok=True)
        (outputs_dir / NOT_RETRYABLE_MARK).touch()
    report_termination(message)
    raise typer.Exit(code)


@functools.cache
def command() -> Callable[..., Any]:
    """The command line parser, built once per process. Typer derives it, and a validator per
    option, from `run`'s signature on every call, which cost more than a no-op step; the warm
    worker builds it before it forks, so each step starts with it ready."""
    built = typer.main.get_command(app)
    # Typer makes each option's validator on its first parse: parse once (nothing runs).
    built.make_context("steps", ["warm-up", "--as-of", "2000-01-01T00:00:00Z", "--store", "file://warm-up"])
    return built


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (used by `__main__` and the warm worker)."""
    try:
        # Standalone mode prints usage errors and --help itself and exits with click's codes
        # (2 for a usage error: bad input, never retried).
        command()(args=argv if argv is not None else sys.argv[1:], standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
