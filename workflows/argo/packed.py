"""The packed mode (`projections-partition-packed`): a partition's slate-level steps as one pod, a `containerSet` with one container per step (docs/argo-rules.md §9)."""

from __future__ import annotations

from typing import Any

from hera.workflows import (
    DAG,
    ContainerSet,
    Counter,
    Histogram,
    Label,
    Parameter,
    Task,
    WorkflowTemplate,
)
from hera.workflows import models as m

from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.step import StepSpec
from workflows.argo.names import (
    ALL_PARAMS,
    CORRELATION_LABEL,
    DRAFT_GROUP_PACK,
    DRAFT_GROUP_PARAM,
    DRAFT_GROUPS_TASK,
    DURATION_BUCKETS,
    OUTPUTS_DIR,
    PACK_MAIN,
    PACKED_TEMPLATE,
    PART_OF,
    PARTITION_PARAMS,
    PARTITION_TEMPLATE,
    SLATE_PACK,
    input_ref,
    template_name,
    workflow_ref,
)
from workflows.argo.partition_dag import (
    dag_inputs,
    dag_task,
    hard_deps,
    in_dependency_order,
    shared_param,
    spec_common,
    stage,
)
from workflows.argo.step_templates import (
    DURATION_HELP,
    OUTCOME_HELP,
    container_security,
    scratch_mounts,
    semaphores,
    step_command,
    step_env,
    step_outcome,
    step_outputs,
)
from workflows.dag.config import PipelineConfig
from workflows.dag.graph import Graph, GraphError

# What `main` asks for: it only runs `true` once the pack's last steps have ended (the emissary
# that wraps it is a Go binary, hence the memory).
MAIN_RESOURCES = m.ResourceRequirements(
    requests={"cpu": "10m", "memory": "32Mi"}, limits={"cpu": "100m", "memory": "128Mi"}
)


def _skippy(graph: Graph, asset: str) -> bool:
    """A step a container set cannot hold: containers have no `when`, so one that must skip
    after another, or one that may skip while others must skip after it, runs as a task. A
    may-skip step nothing skips after (promote) can be a container: its skip is its own."""
    skips_others = graph.specs[asset].may_skip and any(asset in graph.skip_sources(b) for b in graph.order)
    return skips_others or bool(graph.skip_sources(asset))


def slate_pack(graph: Graph) -> list[str]:
    """The slate's steps that feed its draft groups and never skip, in graph order: every step
    outside the pack that depends on one of them depends on all of them, so a pack that fails
    holds back exactly what the failed step would have (checked here)."""
    groups = [a for a in graph.order if stage(graph, a) == "draft_group"]
    if not groups:
        raise GraphError("packed mode needs draft-group steps: the pack is what feeds their fan-out")
    feeding = set().union(*(graph.hard_upstream(a) for a in groups))
    pack = [a for a in graph.order if a in feeding and stage(graph, a) == "slate" and not _skippy(graph, a)]
    if DRAFT_GROUP_SOURCE[0] not in pack:
        raise GraphError(f"{DRAFT_GROUP_SOURCE[0]} must be packed: the pack outputs the draft groups")
    for asset in graph.order:
        if asset in pack or stage(graph, asset) == "shared":
            continue
        reads = set(hard_deps(graph, asset)) & set(pack)
        if reads and not set(pack) <= graph.hard_upstream(asset):
            raise GraphError(
                f"{asset} reads {sorted(reads)} but not the whole slate pack: it cannot wait for it"
            )
    return pack


def draft_group_pack(graph: Graph) -> list[str]:
    groups = [a for a in graph.order if stage(graph, a) == "draft_group"]
    for asset in groups:
        if _skippy(graph, asset):
            raise GraphError(
                f"draft-group step {asset!r} skips with or after another: a container set cannot"
            )
    return groups


def pack_outputs_dir(asset: str) -> str:
    # Every container of a pod shares /tmp: each writes its output files to its own directory.
    return f"{OUTPUTS_DIR}/{template_name(asset)}"


def _quantity(text: str, units: dict[str, int]) -> int:
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if suffix and text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(float(text) * units[""])


def pack_share(cfg: PipelineConfig, containers: int) -> tuple[str, str]:
    """Each step container's requests in a pack: the configured total split evenly. The pod
    asks for the sum of its containers' requests although they mostly run one after another
    (docs/container-set-template.md), so per-step requests would ask for several nodes."""
    cpu = _quantity(cfg.argo.pack_cpu, {"m": 1, "": 1000})
    memory = _quantity(cfg.argo.pack_memory, {"Ki": 1, "Mi": 1024, "Gi": 1024**2, "": 1}) // 1024
    return f"{max(cpu // containers, 1)}m", f"{max(memory // containers, 1)}Mi"


def _pack_container(
    spec: StepSpec, cfg: PipelineConfig, deps: list[str], share: tuple[str, str]
) -> m.ContainerNode:
    r = spec.resources
    return m.ContainerNode(
        name=template_name(spec.asset),
        image=cfg.argo.image,
        image_pull_policy=cfg.argo.image_pull_policy,
        command=step_command(spec, pack_outputs_dir(spec.asset)),
        env=[e.build() for e in step_env(cfg)],
        resources=m.ResourceRequirements(
            requests={"cpu": share[0], "memory": share[1]},
            limits={"cpu": r.cpu_limit, "memory": r.memory_limit},
        ),
        security_context=container_security(),
        termination_message_policy="FallbackToLogsOnError",
        dependencies=deps or None,
    )


def _pack_main(cfg: PipelineConfig, sinks: list[str]) -> m.ContainerNode:
    return m.ContainerNode(
        name=PACK_MAIN,
        image=cfg.argo.image,
        image_pull_policy=cfg.argo.image_pull_policy,
        command=["true"],
        resources=MAIN_RESOURCES,
        security_context=container_security(),
        dependencies=sinks,
    )


def pack_attempts(specs: list[StepSpec], cfg: PipelineConfig) -> int:
    """Runs the emissary gives each container of a pack: one value for the whole set, the most
    any of its steps allows. `retries` is the number of runs in the code read (wait.Backoff
    Steps), so it is never 0, which would run nothing (docs/argo-rules.md §9.1)."""
    limits = [s.retries if s.retries is not None else cfg.runner.retries.limit for s in specs]
    return max(limits) + 1


def pack_deadline(graph: Graph, assets: list[str], attempts: int, backoff: int) -> int:
    """The pod's deadline: the longest chain of the pack's steps, each at its own timeout for
    every run, with the waits between runs. Per-step timeouts cannot be set on a container."""
    longest: dict[str, int] = {}
    for asset in assets:  # graph order: upstream first
        own = graph.specs[asset].timeout_s * attempts + backoff * (attempts - 1)
        longest[asset] = own + max((longest[u] for u in hard_deps(graph, asset) if u in longest), default=0)
    return max(longest.values())


def pack_metrics(specs: list[StepSpec]) -> list[Any]:
    """The step metrics of §8.4 for each step of a pack, from its status and summary outputs:
    container nodes emit none of their own. The duration is the step's own (its summary), and
    a step that never ran (status unknown) emits nothing, as an Omitted task does not."""
    metrics: list[Any] = []
    for spec in specs:
        out = f"outputs.parameters.{shared_param(spec.asset)}"
        ran = "'{{%s_status}}' != 'unknown'" % out  # noqa: UP031
        phase = "{{=%s_status == 'failed' ? 'Failed' : 'Succeeded'}}" % out  # noqa: UP031
        metrics += [
            Histogram(
                name="projections_step_duration_seconds",
                help=DURATION_HELP,
                labels=[Label(key="asset", value=spec.asset), Label(key="phase", value=phase)],
                when=ran,
                value="{{=jsonpath(%s_summary, '$.duration_s')}}" % out,  # noqa: UP031
                buckets=list(DURATION_BUCKETS),
            ),
            Counter(
                name="projections_step_outcome_total",
                help=OUTCOME_HELP,
                labels=[
                    Label(key="asset", value=spec.asset),
                    Label(key="outcome", value=step_outcome(f"{out}_status", f"{out}_summary")),
                ],
                when=ran,
                value="1",
            ),
        ]
    return metrics


def pack_outputs(specs: list[StepSpec]) -> list[Parameter]:
    """Each step's status and summary (for the metrics), and the draft groups to fan out over;
    read by the wait container once every container has ended, whatever their exit codes."""
    outputs = []
    for spec in specs:
        for p in step_outputs(spec, pack_outputs_dir(spec.asset)):
            if p.name in ("status", "summary"):
                outputs.append(
                    Parameter(name=f"{shared_param(spec.asset)}_{p.name}", value_from=p.value_from)
                )
            elif p.name == "draft_groups":
                outputs.append(p)
    return outputs


def pack_template(name: str, assets: list[str], graph: Graph, cfg: PipelineConfig) -> ContainerSet:
    specs = [graph.specs[a] for a in assets]
    share = pack_share(cfg, len(specs))
    containers: list[Any] = [
        _pack_container(s, cfg, [template_name(u) for u in hard_deps(graph, s.asset) if u in assets], share)
        for s in specs
    ]
    below = {u for a in assets for u in hard_deps(graph, a)}
    containers.append(_pack_main(cfg, [template_name(a) for a in assets if a not in below]))
    attempts = pack_attempts(specs, cfg)
    backoff = int(cfg.runner.retries.backoff_seconds)
    inputs = dag_inputs(graph, assets) + ((DRAFT_GROUP_PARAM,) if name == DRAFT_GROUP_PACK else ())
    return ContainerSet(
        name=name,
        containers=containers,
        volume_mounts=scratch_mounts(),  # the set's mounts reach every container (GetContainers)
        container_set_retry_strategy=m.ContainerSetRetryStrategy(
            retries=m.IntOrString(str(attempts)),  # IntOrString: a string in the schema
            duration=f"{backoff}s",
        ),
        inputs=[Parameter(name=p) for p in inputs],
        outputs=pack_outputs(specs),
        active_deadline_seconds=str(pack_deadline(graph, assets, attempts, backoff)),
        synchronization=semaphores(tuple(sorted({g for s in specs for g in s.concurrency}))),
        labels={
            **PART_OF,
            "projections/pack": name,
            "projections/game-date": input_ref("game_date"),
            "projections/run-id": input_ref("run_id"),
            CORRELATION_LABEL: workflow_ref("correlation_id"),
        },
        annotations={"projections/description": "Steps " + ", ".join(assets) + ", in one pod"},
        metrics=pack_metrics(specs),
    )


def packed_partition_dag(graph: Graph) -> DAG:
    """The partition DAG with its packs: the slate pack, each step it cannot hold as a task of
    its own (from the partition template, with the same `when`), and the draft-group pack
    fanned out over the groups the slate pack outputs. The skip rule is the one of
    `partition_dag`: no step inside a pack skips after another."""
    pack, groups = slate_pack(graph), draft_group_pack(graph)

    def task_of(up: str) -> str | None:
        if up in pack:
            return SLATE_PACK
        where = stage(graph, up)
        return (
            template_name(up) if where == "slate" else (DRAFT_GROUPS_TASK if where == "draft_group" else None)
        )

    tasks = [
        Task(
            name=SLATE_PACK,
            template=SLATE_PACK,
            arguments=[Parameter(name=p, value=input_ref(p)) for p in dag_inputs(graph, pack)],
        )
    ]
    for asset in (a for a in graph.order if stage(graph, a) == "slate" and a not in pack):
        ups = {t for u in hard_deps(graph, asset) if (t := task_of(u))}
        tasks.append(dag_task(graph, asset, ups, PARTITION_PARAMS, ref=PARTITION_TEMPLATE))
    outer = {
        t
        for a in groups
        for u in hard_deps(graph, a)
        if stage(graph, u) != "draft_group"
        if (t := task_of(u))
    }
    tasks.append(
        Task(
            name=DRAFT_GROUPS_TASK,
            template=DRAFT_GROUP_PACK,
            with_param="{{tasks.%s.outputs.parameters.draft_groups}}" % SLATE_PACK,  # noqa: UP031
            arguments=[Parameter(name=p, value=input_ref(p)) for p in dag_inputs(graph, groups)]
            + [Parameter(name=DRAFT_GROUP_PARAM, value="{{item}}")],
            depends=" && ".join(sorted(outer | {SLATE_PACK})),
        )
    )
    return DAG(
        name="partition",
        inputs=[Parameter(name=p) for p in PARTITION_PARAMS],
        fail_fast=False,  # as the local runner: a failure holds back only its own downstream
        tasks=in_dependency_order(tasks),
    )


def packed_partition_template(graph: Graph, cfg: PipelineConfig) -> WorkflowTemplate:
    return WorkflowTemplate(
        name=PACKED_TEMPLATE,
        labels=dict(PART_OF),
        entrypoint="partition",
        arguments=[Parameter(name=p) for p in ALL_PARAMS],
        templates=[
            packed_partition_dag(graph),
            pack_template(SLATE_PACK, slate_pack(graph), graph, cfg),
            pack_template(DRAFT_GROUP_PACK, draft_group_pack(graph), graph, cfg),
        ],
        **spec_common(cfg),
    )
