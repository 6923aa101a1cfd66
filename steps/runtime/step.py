"""A step: a declaration (what it makes, consumes, needs) plus a function over a context.

`execute` is the only way a step runs. It resolves inputs, lets the step compute, runs its
checks, writes outputs create-only under its attempt's prefix and the manifest last. Any
exception becomes a failed manifest and a non-zero exit; outputs of a failed attempt are never
named by a success manifest, so no reader ever trusts them, and no attempt ever overwrites
another's outputs.
"""

from __future__ import annotations

import contextlib
import io
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property, partial
from typing import Any, Literal

import pandas as pd

import steps
from steps.runtime import asof, layout
from steps.runtime.contracts import DataFrameSchema, enforce
from steps.runtime.environment import git_sha, hostname, python_version
from steps.runtime.errors import CheckFailed, Deterministic, MissingInput, StoreError
from steps.runtime.events import emit
from steps.runtime.faults import maybe_fault, skip_work
from steps.runtime.inputs import resolve_input
from steps.runtime.manifest import (
    CheckRecord,
    EnvironmentRecord,
    ErrorRecord,
    GapRecord,
    InputRecord,
    Manifest,
    OutputRecord,
    Severity,
    Status,
    Timing,
    read_output,
    read_output_frame,
    write_manifest,
)
from steps.runtime.partition import Partition
from steps.runtime.shapes import DATE, DRAFT_GROUP_SOURCE, Input, Shape
from steps.runtime.store import Store, content_hash, frame_to_parquet
from steps.runtime.timefmt import iso_utc, utc_now

GapPolicy = Literal["fail", "proceed"]


@dataclass(frozen=True)
class Resources:
    cpu: str = "250m"
    memory: str = "512Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"


@dataclass(frozen=True)
class StepSpec:
    """What a step declares. The graph, both runners and the Argo templates derive from it."""

    asset: str
    run: Callable[[StepContext], None]
    description: str
    # Inputs: an asset name (mapped `same`), or an Input naming another mapping.
    consumes: tuple[str | Input, ...] = ()
    sources: tuple[str, ...] = ()
    shape: Shape = DATE  # what one partition of this asset is
    concurrency: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)
    # Wall-clock limit of one attempt: the local runner kills the step after it, Argo sets
    # it as the template's activeDeadlineSeconds. A hung step must not hold a daily run.
    timeout_s: int = 900
    retries: int | None = None  # None: the configured default (workflows config)
    # What a missing source does: stop with a remediation message, or proceed and record it.
    gap_policy: dict[str, GapPolicy] = field(default_factory=dict)
    remediation: dict[str, str] = field(default_factory=dict)
    # When a success manifest alone does not mean done (promote: its pointer must exist).
    rerun_if: Callable[[Store, Partition], bool] | None = None
    # May end a partition early (a SkipPartition: NotDue, NotPromoted; its manifest says which).
    # Its downstream steps are then held back the same way, on both runners; a step that does
    # not declare it and raises one fails instead, so the compiled Argo DAG knows every source.
    may_skip: bool = False

    def policy_for(self, source: str) -> GapPolicy:
        return self.gap_policy.get(source, "fail")

    @cached_property  # the planner asks once per step partition it links
    def inputs(self) -> tuple[Input, ...]:
        return tuple(c if isinstance(c, Input) else Input(c) for c in self.consumes)

    @property
    def consumed_assets(self) -> tuple[str, ...]:
        return tuple(i.asset for i in self.inputs)

    def input(self, asset: str) -> Input:
        for item in self.inputs:
            if item.asset == asset:
                return item
        raise MissingInput(f"{self.asset} does not declare {asset} as an input")


class SkipPartition(Exception):
    """A step ends its partition early, cleanly and without outputs; `status` says why."""

    status: Status = "not_due"


class NotDue(SkipPartition):
    """What the step reads has not settled yet (box scores before the slate settles)."""


class NotPromoted(SkipPartition):
    """Promote leaves the current pointer where it is (a run with a newer as-of is current)."""

    status: Status = "not_promoted"


def summarise_frame(frame: pd.DataFrame) -> tuple[dict[str, int], dict[str, list[Any]]]:
    nulls = {str(c): int(n) for c, n in frame.isna().sum().items()}
    min_max: dict[str, list[Any]] = {}
    for column in frame.columns:
        series = frame[column]
        if len(series) and (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)):
            lo, hi = series.min(), series.max()
            if pd.notna(lo):
                min_max[str(column)] = [float(lo), float(hi)]
    return nulls, min_max


@dataclass
class StepContext:
    spec: StepSpec
    partition: Partition
    store: Store
    correlation_id: str
    attempt_id: str
    inputs: list[InputRecord] = field(default_factory=list)
    outputs: list[OutputRecord] = field(default_factory=list)
    checks: list[CheckRecord] = field(default_factory=list)
    gaps: list[GapRecord] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    draft_groups: list[str] = field(default_factory=list)  # what a fan-out source listed

    @property
    def game_date(self) -> date:
        return self.partition.game_date

    @property
    def as_of(self) -> datetime:
        return self.partition.run_as_of_ts

    # ---- sources (as-of) -------------------------------------------------------------
    def source(
        self,
        name: str,
        *,
        game_date: date | None = None,
        as_of: datetime | None = None,
        schema: DataFrameSchema | None = None,
    ) -> pd.DataFrame | None:
        """The as-of snapshot of a landing source; None (and a recorded gap) if allowed."""
        day = game_date or self.game_date
        when = as_of or self.as_of
        choice = asof.select_as_of(self.store, name, day, when)
        if isinstance(choice, asof.Gap):
            policy = self.spec.policy_for(name)
            if policy == "fail":
                hint = self.spec.remediation.get(name, "land the source, then rerun")
                raise MissingInput(f"{choice.reason}. Remediation: {hint}")
            self.gaps.append(GapRecord(source=name, policy=policy, detail=choice.reason))
            return None
        frame = self.store.get_parquet(choice.key)
        self.inputs.append(
            InputRecord(
                name=name,
                kind="source",
                path=choice.key,
                snapshot_ts=iso_utc(choice.snapshot_ts),
                row_count=len(frame),
                file_count=1,
                size_bytes=choice.size_bytes,
            )
        )
        if schema is not None:
            frame = enforce(frame, schema, f"{self.spec.asset} input {name}")
        return frame

    def source_history(
        self, name: str, *, since: date | None = None, schema: DataFrameSchema | None = None
    ) -> pd.DataFrame:
        """Every date before the slate, each as of `run_as_of_ts`; one listing, one record."""
        picked = asof.select_history(self.store, name, self.game_date, self.as_of, since=since)
        frames = [self.store.get_parquet(s.key) for s in picked]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        self.inputs.append(
            InputRecord(
                name=f"{name}.history",
                kind="source",
                path=layout.landing_source_prefix(name),
                snapshot_ts=iso_utc(max(s.snapshot_ts for s in picked)) if picked else None,
                row_count=len(frame),
                file_count=len(picked),
                size_bytes=sum(s.size_bytes for s in picked),
            )
        )
        if schema is not None and len(frame):
            frame = enforce(frame, schema, f"{self.spec.asset} input {name} history")
        return frame

    # ---- upstream assets -------------------------------------------------------------
    def resolve_upstream(self, asset: str) -> Manifest:
        """The one run of `asset` this partition reads (a `same` or `month` input)."""
        [manifest] = self.resolve_all(asset)
        return manifest

    def resolve_all(self, asset: str) -> list[Manifest]:
        """Every run this partition reads of `asset`: one, or one per draft group or date."""
        item = self.spec.input(asset)
        return resolve_input(self.store, item, shape_of(asset), self.partition)

    def upstream(
        self, asset: str, output: str = "data", *, schema: DataFrameSchema | None = None
    ) -> pd.DataFrame:
        """The input as one frame: for `draft_groups` and `window`, every partition's rows."""
        frames = []
        for manifest in self.resolve_all(asset):
            record = manifest.output(output)
            frames.append(read_output_frame(self.store, record))
            self.record_upstream(asset, manifest, record)
        if len(frames) == 1:
            frame = frames[0]
        else:  # none is an empty window (a season's first slate): no rows
            frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if schema is not None and (len(frame) or len(frames) == 1):
            frame = enforce(frame, schema, f"{self.spec.asset} input {asset}")
        return frame

    def upstream_bytes(self, asset: str, output: str) -> tuple[bytes, Manifest]:
        manifest = self.resolve_upstream(asset)
        record = manifest.output(output)
        self.record_upstream(asset, manifest, record)
        return read_output(self.store, record), manifest

    def record_upstream(
        self, asset: str, manifest: Manifest, record: OutputRecord, *, name: str | None = None
    ) -> None:
        """Name a run's output among this step's inputs (`<asset>.<output>` unless `name`)."""
        self.inputs.append(
            InputRecord(
                name=name or f"{asset}.{record.name}",
                kind="asset",
                path=record.path,
                run_id=manifest.partition.run_id,
                content_hash=record.content_hash,
                row_count=record.row_count,
                file_count=1,
            )
        )

    # ---- outputs, checks -------------------------------------------------------------
    def _output_key(self, name: str, suffix: str) -> str:
        """Where this attempt writes: never where another attempt of the run wrote."""
        return layout.output_key(self.spec.asset, self.partition.key, self.attempt_id, name, suffix)

    def write(
        self,
        name: str,
        frame: pd.DataFrame,
        *,
        schema: DataFrameSchema | None = None,
        unique: tuple[str, ...] = (),
    ) -> OutputRecord:
        if schema is not None:
            frame = enforce(frame, schema, f"{self.spec.asset} output {name}")
        frame = frame.reset_index(drop=True)
        data = frame_to_parquet(frame)
        key = self._output_key(name, "parquet")
        self.store.put_if(key, data, if_none_match=True)
        nulls, min_max = summarise_frame(frame)
        record = OutputRecord(
            name=name,
            path=key,
            row_count=len(frame),
            content_hash=content_hash(data),
            null_counts=nulls,
            min_max=min_max,
            unique_checks=({",".join(unique): not frame.duplicated(list(unique)).any()} if unique else None),
        )
        self.outputs.append(record)
        if (self.spec.asset, name) == DRAFT_GROUP_SOURCE[:2]:
            self.draft_groups = sorted(str(g) for g in frame[DRAFT_GROUP_SOURCE[2]].dropna().unique())
        return record

    def write_bytes(self, name: str, data: bytes, *, suffix: str = "json") -> OutputRecord:
        key = self._output_key(name, suffix)
        self.store.put_if(key, data, if_none_match=True)
        record = OutputRecord(name=name, path=key, row_count=0, content_hash=content_hash(data))
        self.outputs.append(record)
        return record

    def check(self, name: str, passed: bool, detail: str = "", *, severity: Severity = "critical") -> None:
        self.checks.append(CheckRecord(name=name, passed=bool(passed), detail=detail, severity=severity))

    def metric(self, name: str, value: float) -> None:
        self.metrics[name] = round(float(value), 6)


def shape_of(asset: str) -> Shape:
    """A registered step's shape; a step outside the registry (a test's) is date-shaped."""
    from steps.registry import all_steps

    spec = all_steps().get(asset)
    return spec.shape if spec else DATE


def _snippet(exc: BaseException) -> str:
    buf = io.StringIO()
    traceback.print_exception(exc, file=buf)
    return buf.getvalue()[-2000:]


def execute(
    spec: StepSpec,
    partition: Partition,
    store: Store,
    *,
    correlation_id: str,
    orchestrator_run_id: str | None = None,
    attempt: int = 1,
    attempt_id: str | None = None,
    reason: str | None = None,
) -> Manifest:
    """Run one step for one partition; always leaves a manifest (any `Status`)
    when the store answers. A store that fails the manifest write raises its StoreError."""
    started = utc_now()
    attempt_id = attempt_id or layout.new_attempt_id()
    event_fields: dict[str, Any] = {
        "asset": spec.asset,
        "game_date": partition.game_date,
        "run_id": partition.run_id,
    }
    ctx = StepContext(
        spec=spec, partition=partition, store=store, correlation_id=correlation_id, attempt_id=attempt_id
    )
    announce = partial(
        emit,
        store,
        "step_started",
        correlation_id=correlation_id,
        detail={"attempt": attempt, "attempt_id": attempt_id},
        **event_fields,
    )
    status, error = _run(spec, partition, ctx, announce)
    finished = utc_now()
    manifest = Manifest(
        asset=spec.asset,
        partition=partition,
        status=status,
        timing=Timing(
            started_at=started,
            finished_at=finished,
            duration_s=round((finished - started).total_seconds(), 6),
        ),
        inputs=ctx.inputs,
        outputs=ctx.outputs,
        checks=ctx.checks,
        gaps=ctx.gaps,
        error=error,
        environment=EnvironmentRecord(
            git_sha=git_sha(),
            code_version=steps.__version__,
            hostname=hostname(),
            python=python_version(),
            orchestrator_run_id=orchestrator_run_id,
        ),
        correlation_id=correlation_id,
        metrics=ctx.metrics,
        draft_groups=ctx.draft_groups if status == "success" else [],
        attempt=attempt,
        attempt_id=attempt_id,
        reason=reason,
    )
    write_manifest(store, manifest)
    with contextlib.suppress(StoreError):  # the manifest is the record; events are a convenience
        emit(
            store,
            "step_finished",
            correlation_id=correlation_id,
            status=status,
            detail={
                "attempt": attempt,
                "attempt_id": attempt_id,
                "duration_s": manifest.timing.duration_s,
                "error": error.message if error else None,
            },
            **event_fields,
        )
    return manifest


def _run(
    spec: StepSpec, partition: Partition, ctx: StepContext, announce: Callable[[], object]
) -> tuple[Status, ErrorRecord | None]:
    """The step's own work and what it ended as. Whatever it raises is its outcome; the
    `step_started` event is part of the attempt, so a store that fails it fails the step."""
    try:
        announce()
        if not skip_work(spec.asset, partition.game_date):
            spec.run(ctx)
        maybe_fault(spec.asset, partition.game_date)
    except SkipPartition as exc:
        if not spec.may_skip:
            message = f"{spec.asset} ended early as {exc.status} ({exc}) but does not declare may_skip"
            return "failed", ErrorRecord(type="UndeclaredSkip", message=message, retryable=False)
        ctx.check(exc.status, True, str(exc), severity="warn")  # the reason, named by the status
        return exc.status, None
    except Exception as exc:
        return "failed", ErrorRecord(
            type=type(exc).__name__,
            message=str(exc),
            traceback_snippet=_snippet(exc),
            retryable=not isinstance(exc, Deterministic),
        )
    broken = [c for c in ctx.checks if not c.passed and c.severity == "critical"]
    if not broken:
        return "success", None
    detail = "; ".join(f"{c.name}: {c.detail}" for c in broken)
    return "failed", ErrorRecord(
        type=CheckFailed.__name__, message=f"critical check(s) failed: {detail}", retryable=False
    )
