"""Promote: after health passes, move the "current" pointers to this run, atomically."""

from __future__ import annotations

from steps.runtime import layout
from steps.runtime.errors import PointerRefused
from steps.runtime.partition import Partition
from steps.runtime.pointer import current_run, promote
from steps.runtime.shapes import DRAFT_GROUP
from steps.runtime.step import SkipPartition, StepContext, StepSpec
from steps.runtime.store import Store

PUBLISHED_ASSET = "finalize.unified"
MODEL_ASSET = "minutes.train"


def run(ctx: StepContext) -> None:
    health = ctx.resolve_upstream("health.checks")
    if health.partition.run_id != ctx.partition.run_id:
        raise PointerRefused(f"health.checks did not pass for run {ctx.partition.run_id}; not promoting")
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
    except PointerRefused as exc:
        # A late backfill with an older as-of: the newer run stays current, by design.
        raise SkipPartition(f"not promoted: {exc}") from None
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
    except PointerRefused as exc:
        ctx.check("model_pointer", True, f"models/minutes kept: {exc}", severity="warn")


def pointer_missing(store: Store, partition: Partition) -> bool:
    return current_run(store, layout.pointer_scope(PUBLISHED_ASSET, partition.key)) is None


STEPS = [
    StepSpec(
        asset="promote",
        run=run,
        description="Compare-and-swap the current pointers to this run once health passed",
        consumes=("health.checks", "finalize.unified", "minutes.train"),
        concurrency=("stage.promote",),
        retries=3,
        shape=DRAFT_GROUP,  # each draft group has its own current pointer
        rerun_if=pointer_missing,
        may_skip=True,  # a newer run is current: nothing to promote
    )
]
