"""One partition's DAG (the `projections-partition` WorkflowTemplate): the slate's steps, its draft groups fanned out, and the window slates shared by a range."""

from __future__ import annotations

from typing import Any

from hera.workflows import (
    DAG,
    EmptyDirVolume,
    Parameter,
    Task,
    WorkflowTemplate,
)
from hera.workflows import models as m

from steps.pipeline.settle import settle_time
from steps.runtime.partition import Partition, month_of
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.timefmt import iso_utc
from workflows.argo.names import (
    ALL_PARAMS,
    ARTIFACT_CONFIGMAP,
    DRAFT_GROUP_DAG,
    DRAFT_GROUP_PARAM,
    DRAFT_GROUPS_TASK,
    PART_OF,
    PARTITION_PARAMS,
    PARTITION_TEMPLATE,
    SCRATCH_VOLUME,
    SHARED_DAG,
    SHARED_ITEM,
    SUCCESS,
    input_ref,
    template_name,
)
from workflows.argo.step_templates import pod_security, step_inputs, step_template
from workflows.dag.config import PipelineConfig
from workflows.dag.graph import Graph, GraphError


def slate_items(slates: list[Partition]) -> list[dict[str, str]]:
    """Slates as the chunk template takes them (`{{item.<name>}}`; all strings). A month's
    schedule runs as the range's first slate in that month (workflows/dag/plan.py)."""
    months: dict[str, Partition] = {}
    for slate in sorted(slates, key=lambda p: p.game_date):
        months.setdefault(month_of(slate.game_date), slate)
    return [
        {
            "game_date": p.game_date.isoformat(),
            "run_id": p.run_id or "",
            "as_of": p.as_of_iso(),
            "season": str(p.season),
            "profile": p.profile or "base",
            "worlds": str(p.worlds),
            "month": month_of(p.game_date),
            "month_run_id": months[month_of(p.game_date)].run_id or "",
            "month_as_of": months[month_of(p.game_date)].as_of_iso(),
            "settled_as_of": iso_utc(settle_time(p.game_date)),
        }
        for p in slates
    ]


def shared_items(nodes: list[tuple[str, Partition]]) -> dict[str, list[dict[str, str]]]:
    """The shared stage's partitions by step (window slates), as its tasks take them."""
    out: dict[str, list[dict[str, str]]] = {}
    for asset, partition in nodes:
        out.setdefault(asset, []).append(
            {
                "game_date": partition.game_date.isoformat(),
                "settled_as_of": partition.as_of_iso(),
                "season": str(partition.season),
            }
        )
    return out


def stage(graph: Graph, asset: str) -> str:
    """Where a step runs on Argo: `shared` (read only through windows, before the chunks),
    `draft_group` (the nested DAG fanned out over a slate's groups), or `slate`."""
    if graph.window_only(asset):
        return "shared"
    return "draft_group" if graph.specs[asset].shape.name == "draft_group" else "slate"


def shared_param(asset: str) -> str:
    return template_name(asset).replace("-", "_")


def partition_dag(graph: Graph) -> DAG:
    """A slate's DAG: a task per step of the `slate` stage, and one task that fans the
    draft-group steps out over the groups `dk.salaries` lists (`withParam`).

    The skip rule both runners share (docs/argo-rules.md):

    - `depends` names the upstream tasks bare, which Argo satisfies by Succeeded or Skipped; a
      Failed or Omitted upstream makes the task Omitted (the local runner: blocked).
    - A step that may stop short exits 0 and outputs its status (`not_due`, `not_promoted`).
      Every task downstream of it carries a `when` that its status is `success`, so it shows
      as Skipped (the local runner: the upstream's word, not_due, with the reason) and the
      workflow stays green. Argo resolves `tasks.X.outputs` for any
      ancestor X, and a may-skip step always runs when its own upstream succeeded, so the
      output exists whenever `when` is evaluated; hence no may-skip step may sit below another.
    - A window's slates run before (the shared stage); they hold nothing back.
    """
    slate = [a for a in graph.order if stage(graph, a) == "slate"]
    groups = [a for a in graph.order if stage(graph, a) == "draft_group"]

    def task_of(up: str) -> str | None:
        where = stage(graph, up)
        return (
            template_name(up) if where == "slate" else (DRAFT_GROUPS_TASK if where == "draft_group" else None)
        )

    tasks = []
    for asset in slate:
        tasks.append(
            dag_task(
                graph, asset, {t for u in hard_deps(graph, asset) if (t := task_of(u))}, PARTITION_PARAMS
            )
        )
    if groups:
        outer = sorted(
            {
                t
                for a in groups
                for u in hard_deps(graph, a)
                if stage(graph, u) != "draft_group"
                if (t := task_of(u))
            }
        )
        for asset in groups:
            inside = [s for s in graph.skip_sources(asset) if stage(graph, s) != "draft_group"]
            if inside:
                raise GraphError(
                    f"draft-group step {asset!r} would skip after {', '.join(inside)}: not supported"
                )
        source = template_name(DRAFT_GROUP_SOURCE[0])
        tasks.append(
            Task(
                name=DRAFT_GROUPS_TASK,
                template=DRAFT_GROUP_DAG,
                with_param="{{tasks.%s.outputs.parameters.draft_groups}}" % source,  # noqa: UP031
                arguments=[Parameter(name=p, value=input_ref(p)) for p in dag_inputs(graph, groups)]
                + [Parameter(name=DRAFT_GROUP_PARAM, value="{{item}}")],
                depends=" && ".join(sorted({*outer, source})),
            )
        )
    return DAG(
        name="partition",
        inputs=[Parameter(name=p) for p in PARTITION_PARAMS],
        # As the local runner: a failed step holds back only its own downstream steps.
        fail_fast=False,
        tasks=in_dependency_order(tasks),
    )


def in_dependency_order(tasks: list[Task]) -> list[Task | m.DAGTask]:
    """Tasks listed after the tasks they depend on (easier to read, and to check)."""
    placed: list[Task | m.DAGTask] = []
    names: set[str] = set()
    waiting = list(tasks)
    while waiting:
        for task in waiting:
            ups = set(task.depends.split(" && ")) if task.depends else set()
            if ups <= names:
                placed.append(task)
                names.add(task.name)
                waiting.remove(task)
                break
        else:
            raise GraphError("the compiled DAG has a cycle")
    return placed


def draft_group_dag(graph: Graph) -> DAG:
    """One draft group's steps (ownership to promote), fanned out by the slate's DAG."""
    groups = [a for a in graph.order if stage(graph, a) == "draft_group"]
    inputs = (*dag_inputs(graph, groups), DRAFT_GROUP_PARAM)
    tasks: list[Task | m.DAGTask] = [
        dag_task(graph, a, {template_name(u) for u in hard_deps(graph, a) if u in groups}, inputs)
        for a in groups
    ]
    return DAG(name=DRAFT_GROUP_DAG, inputs=[Parameter(name=p) for p in inputs], fail_fast=False, tasks=tasks)


def shared_dag(graph: Graph) -> DAG:
    """The partitions slates read through windows (e.g. every settled slate's tracking), run
    before the range's chunks so every window is the same however the chunks are ordered."""
    assets = [a for a in graph.order if stage(graph, a) == "shared"]
    for asset in assets:
        if set(step_inputs(graph.specs[asset])) - set(SHARED_ITEM):
            raise GraphError(f"shared step {asset!r} is not a settled slate: its item holds {SHARED_ITEM}")
    return DAG(
        name=SHARED_DAG,
        inputs=[Parameter(name=shared_param(a), value="[]") for a in assets],
        parallelism=4,
        fail_fast=False,
        tasks=[
            Task(
                name=template_name(a),
                template_ref=m.TemplateRef(name=PARTITION_TEMPLATE, template=template_name(a)),
                with_param=input_ref(shared_param(a)),
                arguments=[
                    Parameter(name=p, value="{{item.%s}}" % p)  # noqa: UP031
                    for p in step_inputs(graph.specs[a])
                ],
            )
            for a in assets
        ],
    )


def hard_deps(graph: Graph, asset: str) -> list[str]:
    return [i.asset for i in graph.specs[asset].inputs if i.asset in graph.specs and i.mapping != "window"]


def dag_inputs(graph: Graph, assets: list[str]) -> tuple[str, ...]:
    used = {p for a in assets for p in step_inputs(graph.specs[a])} - {DRAFT_GROUP_PARAM}
    return tuple(p for p in PARTITION_PARAMS if p in used)


def dag_task(
    graph: Graph, asset: str, ups: set[str], available: tuple[str, ...], ref: str | None = None
) -> Task:
    """A step's task; `ref` names the WorkflowTemplate holding its template, if not this one."""
    sources = graph.skip_sources(asset)
    if sources and graph.specs[asset].may_skip:
        raise GraphError(
            f"step {asset!r} may skip but sits below {', '.join(sources)}, which may skip too; "
            "Argo could not read its status when it is skipped"
        )
    params = [p for p in step_inputs(graph.specs[asset]) if p in available]
    where: dict[str, Any] = (
        {"template_ref": m.TemplateRef(name=ref, template=template_name(asset))}
        if ref
        else {"template": template_name(asset)}
    )
    return Task(
        name=template_name(asset),
        **where,
        arguments=[Parameter(name=p, value=input_ref(p)) for p in params],
        depends=" && ".join(sorted(ups)) if ups else None,
        when=" && ".join(_succeeded(s) for s in sources) if sources else None,
    )


def _succeeded(asset: str) -> str:
    # `when` is a govaluate expression after substitution: quote both sides as strings. Equal to
    # success, not unequal to one word, so every way of stopping short holds the same back.
    return "'{{tasks.%s.outputs.parameters.status}}' == '%s'" % (template_name(asset), SUCCESS)  # noqa: UP031


def spec_common(cfg: PipelineConfig) -> dict[str, Any]:
    """Spec fields of every object that runs pods.

    Argo takes `volumes`, the pod security context, the service account and podGC from the
    spec of the workflow that runs, not from a WorkflowTemplate reached by `templateRef`
    (docs/argo-rules.md), so the CronWorkflow and the range Workflow carry them too.
    """
    return {
        "namespace": cfg.argo.namespace,
        "service_account_name": cfg.argo.service_account,
        "security_context": pod_security(),
        "pod_metadata": m.Metadata(labels=dict(PART_OF)),
        "artifact_repository_ref": m.ArtifactRepositoryRef(config_map=ARTIFACT_CONFIGMAP, key="default"),
        "archive_logs": True,
        "pod_gc": m.PodGC(strategy="OnPodSuccess", delete_delay_duration="10m"),
        "volumes": [EmptyDirVolume(name=SCRATCH_VOLUME, size_limit=m.Quantity("2Gi"))],
    }


def partition_template(graph: Graph, cfg: PipelineConfig) -> WorkflowTemplate:
    return WorkflowTemplate(
        name=PARTITION_TEMPLATE,
        labels=dict(PART_OF),
        entrypoint="partition",
        arguments=[Parameter(name=p) for p in ALL_PARAMS],
        templates=[
            partition_dag(graph),
            *([draft_group_dag(graph)] if any(stage(graph, a) == "draft_group" for a in graph.order) else []),
            *(step_template(graph.specs[a], cfg) for a in graph.order),
        ],
        **spec_common(cfg),
    )


def shared_assets(graph: Graph) -> list[str]:
    return [a for a in graph.order if stage(graph, a) == "shared"]
