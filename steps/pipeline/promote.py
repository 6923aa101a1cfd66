"""Promote: once this run's own health.checks passed, move the "current" pointers to it, atomically."""

from __future__ import annotations

from steps.pipeline.finalize import PUBLISHED_ASSET
from steps.runtime import layout
from steps.runtime.errors import PointerContended, PointerRefused
from steps.runtime.manifest import InputRecord, Manifest, read_manifest, record_of
from steps.runtime.partition import Partition
from steps.runtime.pointer import DivergentHistory, current_run, promote
from steps.runtime.shapes import DRAFT_GROUP
from steps.runtime.step import NotPromoted, StepContext, StepSpec
from steps.runtime.store import Store

HEALTH_ASSET = "health.checks"
MODEL_ASSET = "minutes.train"


def require_health(ctx: StepContext) -> Manifest:
    """This very partition's health manifest, passed. Never another run's: resolving the input
    would fall back to the current pointer's run, whose health says nothing about this one."""
    where = f"{ctx.partition.describe()} run {ctx.partition.run_id}"
    health = read_manifest(ctx.store, HEALTH_ASSET, ctx.partition.key)
    if health is None:
        raise PointerRefused(f"{HEALTH_ASSET} has no manifest for {where}; run it first; not promoting")
    record_input(ctx, health)
    failed = [c.name for c in health.checks if c.severity == "critical" and not c.passed]
    if health.status != "success" or failed:
        problems = [f"status {health.status}"] if health.status != "success" else []
        if failed:
            problems.append(f"failed critical checks {', '.join(failed)}")
        elif health.error:
            problems.append(f"{health.error.type}: {health.error.message}")
        raise PointerRefused(f"{HEALTH_ASSET} of {where} did not pass ({'; '.join(problems)}); not promoting")
    return health


def record_input(ctx: StepContext, health: Manifest) -> None:
    """Name the judged health run among promote's inputs, as an upstream read would."""
    outputs = [o for o in health.outputs if o.name == "data"]
    if outputs:
        ctx.record_upstream(HEALTH_ASSET, health, outputs[0])
        return
    ctx.inputs.append(  # a health run that failed before writing its table: name its manifest
        InputRecord(
            name=f"{HEALTH_ASSET}.manifest",
            kind="asset",
            path=record_of(health)[0],
            run_id=health.partition.run_id,
            file_count=1,
        )
    )


def run(ctx: StepContext) -> None:
    require_health(ctx)
    unified = ctx.resolve_upstream(PUBLISHED_ASSET)
    if unified.partition.run_id != ctx.partition.run_id:
        raise PointerRefused(f"{PUBLISHED_ASSET} of run {ctx.partition.run_id} has no success manifest")
    reason = f"promote after health.checks passed (correlation {ctx.correlation_id})"
    try:
        pointer = promote(
            ctx.store,
            layout.pointer_scope(PUBLISHED_ASSET, ctx.partition.key),
            asset=PUBLISHED_ASSET,
            key=ctx.partition.key,
            reason=reason,
            correlation_id=ctx.correlation_id,
        )
    except DivergentHistory:
        raise  # a forked pointer history is a failure for an operator to see, never not_promoted
    except PointerRefused as exc:
        # A late backfill with an older as-of: the newer run stays current, by design.
        raise NotPromoted(f"not promoted: {exc}") from None
    # The pointer (with its history) is the record; run outputs stay free of wall-clock
    # values so a rerun is byte-identical.
    ctx.metric("pointer_seq", pointer.seq)
    ctx.check(
        "pointer",
        True,
        f"{pointer.scope} is run {pointer.run_id} (version {pointer.seq})",
        severity="warn",
    )
    model_run = ctx.resolve_upstream(MODEL_ASSET)  # the model this run's scores used
    try:
        model = promote(
            ctx.store,
            layout.model_pointer_scope("minutes"),
            asset=MODEL_ASSET,
            key=model_run.partition.key,
            reason=reason,
            correlation_id=ctx.correlation_id,
        )
        ctx.check(
            "model_pointer",
            True,
            f"models/minutes is run {model.run_id} (version {model.seq})",
            severity="warn",
        )
    except (PointerRefused, PointerContended) as exc:  # best effort: the projections are promoted
        ctx.check("model_pointer", True, f"models/minutes kept: {exc}", severity="warn")


def pointer_missing(store: Store, partition: Partition) -> bool:
    return current_run(store, layout.pointer_scope(PUBLISHED_ASSET, partition.key)) is None


STEPS = [
    StepSpec(
        asset="promote",
        run=run,
        description="Compare-and-swap the current pointers to this run once health passed",
        consumes=(HEALTH_ASSET, PUBLISHED_ASSET, MODEL_ASSET),
        concurrency=("stage.promote",),
        retries=3,
        shape=DRAFT_GROUP,  # each draft group has its own current pointer
        rerun_if=pointer_missing,
        may_skip=True,  # a newer run is current: not_promoted
    )
]
