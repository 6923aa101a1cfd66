"""`pipeline show`, `promote`, `rollback`, `gc` and `migrate-manifests`: the current pointers, what they keep alive, and the records they name."""

from __future__ import annotations

from datetime import date

import typer
from rich.table import Table

from steps.pipeline.finalize import PUBLISHED_ASSET
from steps.runtime import layout
from steps.runtime.errors import PipelineError
from steps.runtime.manifest import latest_records, read_manifest
from steps.runtime.partition import PartitionKey, check_token
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
from workflows.cli.app import (
    GROUP_HELP,
    STORE_HELP,
    app,
    console,
    default_store,
    draft_groups_on,
    fail,
    parse_date,
)

# ---- show, promote, rollback -------------------------------------------------------------


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
    listed = (r.run for r in latest_records(target.list(layout.manifest_scope_prefix(asset, scope))).values())
    runs = [
        r.key.run_id for r in listed if r is not None and r.key.run_id is not None and r.key.scope() == scope
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
        day = parse_date(game_date, "--game-date")
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
    colour = {"success": "green", "failed": "red", "not_due": "yellow", "not_promoted": "blue"}[
        manifest.status
    ]
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
    asset: str = typer.Argument(PUBLISHED_ASSET),
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
        day = parse_date(game_date, "--game-date")
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
    asset: str = typer.Argument(PUBLISHED_ASSET),
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
        day = parse_date(game_date, "--game-date")
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
    from workflows.observe.gc import delete_candidates, plan_gc

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


@app.command("migrate-manifests")
def migrate_manifests_command(
    store: str = typer.Option(None, "--store", help=STORE_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be written"),
) -> None:
    """File manifests written before the records' layout (docs/decisions.md D22) as the records
    resume lists; safe to run twice. Until then, resume reruns the runs they describe."""
    from workflows.observe.migrate import migrate_manifests

    try:
        target = open_store(store or default_store())
        done = migrate_manifests(target, dry_run=dry_run)
    except (PipelineError, ValueError) as exc:
        raise fail(str(exc)) from None
    verb = "would write" if dry_run else "wrote"
    console.print(
        f"{verb} {len(done.copied)} records; {done.present} already had one; "
        f"{len(done.unreadable)} old keys are not readable manifests (their runs rerun)",
        highlight=False,
    )
    for key in done.unreadable:
        console.print(f"  unreadable: {key}", highlight=False, markup=False)
