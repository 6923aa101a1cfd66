"""A range on Argo: the `projections-range` WorkflowTemplate (chunk, plan, summarize), the range Workflow `pipeline submit` creates, and the titles the UI shows."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hera.workflows import (
    DAG,
    Artifact,
    Container,
    Gauge,
    Label,
    NoneArchiveStrategy,
    Parameter,
    Resource,
    Task,
    Workflow,
    WorkflowTemplate,
)
from hera.workflows import models as m

from workflows.argo.names import (
    CHUNK,
    CHUNK_PACKED,
    CORRELATION_LABEL,
    DESCRIPTION,
    EXIT_HANDLER,
    MODE_LABEL,
    MODES,
    OUTPUTS_DIR,
    PACKED_TEMPLATE,
    PART_OF,
    PARTITION_PARAMS,
    PARTITION_TEMPLATE,
    RANGE_FIGURES,
    RANGE_TEMPLATE,
    REPORT_FILE,
    RERUN_VALUES,
    SHARED_DAG,
    SHARED_PARAMS,
    SUMMARY_FILE,
    TITLE,
    input_ref,
)
from workflows.argo.partition_dag import shared_assets, shared_dag, shared_param, spec_common
from workflows.argo.step_templates import container_security, scratch_mounts, step_env
from workflows.dag.config import PipelineConfig
from workflows.dag.graph import Graph


def chunk_dag(cfg: PipelineConfig, *, packed: bool) -> DAG:
    """A chunk's partitions, fanned out with a `parallelism` cap over the partition DAG."""
    return DAG(
        name=CHUNK_PACKED if packed else CHUNK,
        inputs=[Parameter(name="partitions")],
        parallelism=cfg.argo.parallelism,
        fail_fast=False,  # a failed partition must not stop its siblings
        tasks=[
            Task(
                name="partition",
                template_ref=m.TemplateRef(
                    name=PACKED_TEMPLATE if packed else PARTITION_TEMPLATE, template="partition"
                ),
                with_param=input_ref("partitions"),
                arguments=[Parameter(name=p, value="{{item.%s}}" % p) for p in PARTITION_PARAMS],  # noqa: UP031
            )
        ],
    )


def pack_range(partitions: int, cfg: PipelineConfig, override: bool | None = None) -> tuple[bool, str]:
    """Whether a range runs packed, and why: `--pack/--no-pack`, else ranges of at least
    `argo.pack_from_partitions` partitions (docs/argo-scale.md §4 has the cost model)."""
    if override is not None:
        return override, "--pack" if override else "--no-pack"
    threshold = cfg.argo.pack_from_partitions
    packed = partitions >= threshold
    return (
        packed,
        f"{partitions} partition(s) {'>=' if packed else '<'} argo.pack_from_partitions {threshold}",
    )


def _ops_container(
    name: str, args: list[str], cfg: PipelineConfig, inputs: list[str], outputs: list[Any] | None = None
) -> Container:
    return Container(
        name=name,
        image=cfg.argo.image,
        image_pull_policy=cfg.argo.image_pull_policy,
        command=["python", "-m", "workflows.cli", *args],
        inputs=[Parameter(name=p) for p in inputs],
        outputs=outputs or [],
        resources=m.ResourceRequirements(
            requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "1Gi"}
        ),
        labels=dict(PART_OF),
        env=step_env(cfg),
        volume_mounts=scratch_mounts(),
        security_context=container_security(),
        # A crash that leaves no message still shows its last log lines in the Argo UI.
        termination_message_policy="FallbackToLogsOnError",
    )


def range_template(graph: Graph, cfg: PipelineConfig) -> WorkflowTemplate:
    plan = _ops_container(
        "plan",
        [
            "plan",
            "--catch-up-days",
            input_ref("catch_up_days"),
            "--store",
            input_ref("store"),
            "--backfill-id",
            input_ref("correlation_id"),
            "--output",
            f"{OUTPUTS_DIR}/partitions.json",
            "--shared-dir",
            f"{OUTPUTS_DIR}/shared",
        ],
        cfg,
        ["catch_up_days", "store", "correlation_id"],
        outputs=[
            Parameter(name="partitions", value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/partitions.json")),
            *(
                Parameter(
                    name=shared_param(a),
                    value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/shared/{shared_param(a)}.json", default="[]"),
                )
                for a in shared_assets(graph)
            ),
        ],
    )
    return WorkflowTemplate(
        name=RANGE_TEMPLATE,
        labels=dict(PART_OF),
        entrypoint=CHUNK,
        arguments=[Parameter(name="partitions"), *(Parameter(name=p) for p in SHARED_PARAMS)],
        templates=[
            chunk_dag(cfg, packed=False),
            chunk_dag(cfg, packed=True),
            plan,
            *([shared_dag(graph)] if shared_assets(graph) else []),
        ],
        **spec_common(cfg),
    )


def plan_output(name: str) -> str:
    return "{{steps.plan.outputs.parameters.%s}}" % name  # noqa: UP031 - braces would need doubling


def shared_task(graph: Graph, values: dict[str, str]) -> dict[str, Any]:
    """Arguments of a call to the shared stage: each asset's list, then the store and id."""
    return {
        "template_ref": m.TemplateRef(name=RANGE_TEMPLATE, template=SHARED_DAG),
        "arguments": [Parameter(name=shared_param(a), value=values[a]) for a in shared_assets(graph)],
        "continue_on": continue_on_failure(),  # a window reads whatever of it succeeded
    }


def summarize_template(cfg: PipelineConfig) -> Container:
    """The exit handler of every range (daily or submitted): writes the summary from the
    manifests, notifies the webhook, and fails naming the failed partitions and steps.

    It is the `onExit` template itself, not a steps wrapper, and the ranges' entrypoints do not
    fail on a failed chunk (`continueOn`): Argo makes a failed exit handler's node message the
    workflow's message only then (docs/argo-rules.md §7.3), so the failure is what the UI's
    workflow list says.

    It publishes `summary.json` and the offline HTML report as output artifacts, unarchived so
    the UI shows them, and optional so a report that could not be built never fails the step
    (docs/argo-rules.md §8.2); and the range's coverage and accuracy as output parameters for
    its metrics (§8.4).
    """
    summarize = _ops_container(
        EXIT_HANDLER,
        [
            "summarize",
            "--backfill-id",
            "{{workflow.parameters.correlation_id}}",
            "--store",
            "{{workflow.parameters.store}}",
            "--workflow-status",
            "{{workflow.status}}",
            "--webhook-url",
            "{{workflow.parameters.webhook_url}}",
            "--summary-file",
            SUMMARY_FILE,
            "--report-file",
            REPORT_FILE,
            "--figures-dir",
            OUTPUTS_DIR,
        ],
        cfg,
        [],
        outputs=[
            # `kind` labels the range metrics: never empty.
            Parameter(name="kind", value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/kind", default="unknown")),
            *(
                Parameter(name=f, value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/{f}", default=""))
                for f in RANGE_FIGURES
            ),
            Artifact(name="summary", path=SUMMARY_FILE, archive=NoneArchiveStrategy(), optional=True),
            Artifact(name="report", path=REPORT_FILE, archive=NoneArchiveStrategy(), optional=True),
        ],
    )
    summarize.metrics = range_metrics()
    return summarize


def range_metrics() -> list[Any]:
    """Per range, from the exit handler's own outputs: each gauge only when its figure was
    written (`when`), so no metric ever reads an empty value (docs/argo-rules.md §8.4)."""
    kind = Label(key="kind", value="{{outputs.parameters.kind}}")  # daily | catch-up | backfill
    figures = {
        "partitions_planned": "Partitions the range planned",
        "partitions_succeeded": "Partitions of the range that succeeded",
        "partitions_failed": "Partitions of the range that failed",
        "coverage": "Share of the range's planned partitions that succeeded (0..1)",
        "mae_fp": "Mean absolute error of projected fantasy points over the range's settled slates",
    }
    return [
        Gauge(
            name=f"projections_range_{f}",
            help=figures[f],
            labels=[kind],
            when="'{{outputs.parameters.%s}}' != ''" % f,  # noqa: UP031
            value="{{outputs.parameters.%s}}" % f,  # noqa: UP031
            realtime=False,
        )
        for f in RANGE_FIGURES
    ]


def continue_on_failure() -> m.ContinueOn:
    # The range goes on to later chunks and to its exit handler, which fails it with a message.
    return m.ContinueOn(failed=True, error=True)


def child_manifest(cfg: PipelineConfig, packed: bool = False) -> str:
    """The child workflow a range creates per chunk (Argo fills the `{{...}}` at run time). A
    packed range's children start at `chunk-packed`: a workflowTemplateRef workflow's own
    fields win over the template's (JoinWorkflowSpec, docs/argo-rules.md §7.1)."""
    child = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "generateName": "{{workflow.name}}-chunk-",
            "namespace": "{{workflow.namespace}}",
            "labels": {**PART_OF, CORRELATION_LABEL: "{{workflow.parameters.correlation_id}}"},
            # The chunk task's own words (range_workflow): Argo substitutes the manifest with
            # the template's inputs before creating it (docs/argo-rules.md §8.1).
            "annotations": {TITLE: input_ref("title"), DESCRIPTION: input_ref("description")},
        },
        "spec": {
            "workflowTemplateRef": {"name": RANGE_TEMPLATE},
            **({"entrypoint": CHUNK_PACKED} if packed else {}),
            "arguments": {
                "parameters": [
                    {"name": "partitions", "value": input_ref("partitions")},
                    {"name": "correlation_id", "value": "{{workflow.parameters.correlation_id}}"},
                    {"name": "reason", "value": "{{workflow.parameters.reason}}"},
                    {"name": "rerun", "value": "{{workflow.parameters.rerun}}"},
                    {"name": "store", "value": "{{workflow.parameters.store}}"},
                ]
            },
        },
    }
    return yaml.safe_dump(child, sort_keys=False)


def range_workflow(
    partitions: list[dict[str, str]],
    *,
    correlation_id: str,
    store_url: str,
    cfg: PipelineConfig,
    graph: Graph | None = None,
    shared: dict[str, list[dict[str, str]]] | None = None,
    reason: str = "",
    resume: bool = True,
    as_of_mode: str | None = None,
    packed: bool = False,
) -> Workflow:
    size = cfg.argo.chunk_size
    chunks = [partitions[i : i + size] for i in range(0, len(partitions), size)]
    # the graph whose shared assets run first, if any of them has work in this range
    staged = graph if graph is not None and shared_assets(graph) and any((shared or {}).values()) else None
    run_chunk = Resource(
        name="run-chunk",
        inputs=[Parameter(name="partitions"), Parameter(name="title"), Parameter(name="description")],
        action="create",
        set_owner_reference=True,
        success_condition="status.phase == Succeeded",
        failure_condition="status.phase in (Failed, Error)",
        manifest=child_manifest(cfg, packed),
    )
    tasks: list[Task | m.DAGTask] = [
        Task(
            # A static task per chunk, named by its dates: Argo names `withParam` nodes by
            # their whole item (docs/argo-rules.md), which for a chunk is its JSON.
            name=chunk_task_name(number, chunk),
            template="run-chunk",
            arguments=[
                Parameter(name="partitions", value=json.dumps(chunk, separators=(",", ":"))),
                Parameter(name="title", value=chunk_title(number, len(chunks), chunk)),
                Parameter(
                    name="description",
                    value=chunk_description(number, len(chunks), chunk, correlation_id, as_of_mode),
                ),
            ],
            continue_on=continue_on_failure(),
            depends=SHARED_DAG if staged is not None else None,
        )
        for number, chunk in enumerate(chunks, start=1)
    ]
    if staged is not None:
        lists = {
            a: json.dumps((shared or {}).get(a, []), separators=(",", ":")) for a in shared_assets(staged)
        }
        tasks.append(Task(name=SHARED_DAG, **shared_task(staged, lists)))
    fan_out = DAG(
        name="range",
        parallelism=1,  # chunks run one after another; partitions inside a chunk run in parallel
        fail_fast=False,  # a chunk with a failed partition must not stop the later chunks
        tasks=tasks,
    )
    return Workflow(
        generate_name="projections-range-",
        labels={**PART_OF, CORRELATION_LABEL: correlation_id, MODE_LABEL: "packed" if packed else "unpacked"},
        annotations={
            TITLE: range_title(partitions),
            DESCRIPTION: range_description(
                partitions,
                len(chunks),
                correlation_id=correlation_id,
                as_of_mode=as_of_mode,
                reason=reason,
                packed=packed,
            ),
        },
        entrypoint="range",
        on_exit=EXIT_HANDLER,
        arguments=[
            Parameter(name="correlation_id", value=correlation_id),
            Parameter(name="store", value=store_url),
            Parameter(name="reason", value=reason),
            Parameter(name="rerun", value=RERUN_VALUES[resume]),
            Parameter(name="webhook_url", value=cfg.argo.webhook_url or "none"),
        ],
        templates=[fan_out, run_chunk, summarize_template(cfg)],
        **spec_common(cfg),
    )


def _dates(partitions: list[dict[str, str]]) -> str:
    days = sorted(p["game_date"] for p in partitions)
    if not days:
        return "no dates"
    return days[0] if days[0] == days[-1] else f"{days[0]} to {days[-1]}"


def _plain(text: str) -> str:
    """One line without quotes: it is substituted into a YAML manifest inside single quotes."""
    return " ".join(text.replace("'", "").replace('"', "").split())


def range_title(partitions: list[dict[str, str]]) -> str:
    return f"Projections range {_dates(partitions)}"


def range_description(
    partitions: list[dict[str, str]],
    chunks: int,
    *,
    correlation_id: str,
    as_of_mode: str | None,
    reason: str,
    packed: bool = False,
) -> str:
    parts = [f"{len(partitions)} partition(s) in {chunks} chunk(s)"]
    parts.append(f"as-of mode {as_of_mode}" if as_of_mode else "as-of per partition")
    parts.append(MODES[packed])
    parts.append(f"correlation id {correlation_id}")
    if reason:
        parts.append(f"reason: {_plain(reason)}")
    return "; ".join(parts)


def chunk_title(number: int, chunks: int, chunk: list[dict[str, str]]) -> str:
    return f"Projections chunk {number}/{chunks}: {_dates(chunk)}"


def chunk_description(
    number: int, chunks: int, chunk: list[dict[str, str]], correlation_id: str, as_of_mode: str | None
) -> str:
    mode = f"as-of mode {as_of_mode}" if as_of_mode else "as-of per partition"
    return _plain(
        f"Chunk {number} of {chunks} of range {correlation_id}: {len(chunk)} partition(s), "
        f"{_dates(chunk)}; {mode}; correlation id {correlation_id}"
    )


def chunk_task_name(number: int, chunk: list[dict[str, str]]) -> str:
    first, last = chunk[0]["game_date"], chunk[-1]["game_date"]
    return f"chunk-{number:03d}-{first}" + (f"-to-{last}" if last != first else "")
