"""Hera compilation: the DAG as Argo objects (WorkflowTemplates, range Workflow, CronWorkflow).

- `projections-partition`: one partition's DAG; one container template per step whose command
  is `steps.runtime.command.step_argv` filled with `{{inputs.parameters...}}`.
- `projections-range`: `chunk` fans partitions (a JSON list) out over the partition template
  with a `parallelism` cap; `plan` plans the daily window in-cluster; `summarize` is the exit
  handler that writes the range summary and posts failures to a webhook.
- A range Workflow (`pipeline submit`) creates one child workflow per chunk of partitions, so
  a 700-day backfill never grows one workflow's spec or node status past Argo's limits
  (docs/argo-scale.md).
- The daily CronWorkflow: plan (with the catch-up window) -> chunk, then summarize.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from hera.workflows import (
    DAG,
    Artifact,
    Container,
    ContainerSet,
    Counter,
    CronWorkflow,
    EmptyDirVolume,
    Env,
    Gauge,
    Histogram,
    Label,
    NoneArchiveStrategy,
    Parameter,
    Resource,
    RetryStrategy,
    SecretEnv,
    Step,
    Steps,
    Task,
    Workflow,
    WorkflowTemplate,
)
from hera.workflows import models as m

from steps.pipeline.slate import settle_time
from steps.runtime.command import step_argv
from steps.runtime.errors import EXIT_NOT_RETRYABLE
from steps.runtime.partition import Partition, month_of
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.step import StepSpec
from steps.runtime.timefmt import iso_utc
from workflows.config import PipelineConfig
from workflows.graph import Graph, GraphError

PARTITION_TEMPLATE = "projections-partition"
RANGE_TEMPLATE = "projections-range"
CRON_NAME = "projections-daily"
LIMITS_CONFIGMAP = "projections-limits"
ARTIFACT_CONFIGMAP = "artifact-repositories"
OUTPUTS_DIR = "/tmp/outputs"
SKIPPED = "skipped"  # the `status` output of a step that decided not to run (manifest status)
SCRATCH_VOLUME = "scratch"  # an emptyDir at /tmp: the root filesystem is read-only
# A slate as the range's chunks take it: the date's run, and the month and settled partitions
# its steps of those shapes run as (docs/architecture.md, partition shapes).
PARTITION_PARAMS = (
    "game_date",
    "run_id",
    "as_of",
    "season",
    "profile",
    "worlds",
    "month",
    "month_run_id",
    "month_as_of",
    "settled_as_of",
)
# What every step of a range shares: its id, the store, why it is run (`--reason`; "" for daily
# runs), and whether a success manifest is reused (`--no-force`) or recomputed into a new attempt
# (`--force`, what `pipeline submit --no-resume` asks for). They are arguments of every workflow
# that runs steps (the range, each chunk child, the daily run, a template submitted on its own),
# so step templates read them as `{{workflow.parameters.*}}` and no task passes them: the
# controller puts every argument of the execution spec into the global scope (operator.go
# setExecWorkflow -> setGlobalParameters(execWf.Spec.Arguments); for a `workflowTemplateRef`
# child that spec is the child's arguments joined over the template's) and substitutes it into
# every template it runs, referenced ones included (executeTemplate -> common.ProcessArgs with
# woc.globalParams). docs/argo-rules.md §7.8.
SHARED_PARAMS = ("correlation_id", "store", "reason", "rerun")
RERUN_VALUES = {True: "--no-force", False: "--force"}  # by `resume`
ALL_PARAMS = PARTITION_PARAMS + SHARED_PARAMS
DRAFT_GROUP_PARAM = "draft_group"
DRAFT_GROUPS_TASK = "draft-groups"  # fans a slate's draft-group steps out over its groups
DRAFT_GROUP_DAG = "draft-group"
SHARED_DAG = "shared"  # window slates, run before the range's chunks
SHARED_ITEM = ("game_date", "settled_as_of", "season")  # what a shared partition is
PART_OF = {"app.kubernetes.io/part-of": "projections"}
CORRELATION_LABEL = "projections/correlation-id"
EXIT_HANDLER = "summarize"
# What the Argo UI lists a workflow as (ui/src/shared/annotations.ts; docs/argo-rules.md §8.1).
TITLE = "workflows.argoproj.io/title"
DESCRIPTION = "workflows.argoproj.io/description"
# The exit handler's files, published as output artifacts the UI opens (docs/argo-rules.md §8.2).
SUMMARY_FILE = f"{OUTPUTS_DIR}/summary.json"
REPORT_FILE = f"{OUTPUTS_DIR}/report.html"
# The range figures the exit handler outputs for its metrics (docs/argo-rules.md §8.4).
RANGE_FIGURES = ("partitions_planned", "partitions_succeeded", "partitions_failed", "coverage", "mae_fp")
# Buckets of the step duration histogram, in seconds.
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)


def slate_items(slates: list[Partition]) -> list[dict[str, str]]:
    """Slates as the chunk template takes them (`{{item.<name>}}`; all strings). A month's
    schedule runs as the range's first slate in that month (workflows/plan.py)."""
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


def template_name(asset: str) -> str:
    return asset.replace(".", "-").replace("_", "-")


def _ref(name: str) -> str:
    return "{{inputs.parameters.%s}}" % name  # noqa: UP031 - braces would need doubling


def _global(name: str) -> str:
    return "{{workflow.parameters.%s}}" % name  # noqa: UP031 - braces would need doubling


def _from_workflow(*names: str) -> list[Parameter]:
    """Arguments that pass workflow parameters of the same names through."""
    return [Parameter(name=n, value="{{workflow.parameters.%s}}" % n) for n in names]  # noqa: UP031


def _pod_security() -> m.PodSecurityContext:
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=10001,
        run_as_group=10001,
        fs_group=10001,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def _container_security() -> m.SecurityContext:
    return m.SecurityContext(
        read_only_root_filesystem=True,
        allow_privilege_escalation=False,
        run_as_non_root=True,
        capabilities=m.Capabilities(drop=["ALL"]),
    )


def _env(cfg: PipelineConfig) -> list[Any]:
    argo = cfg.argo
    return [
        Env(name="PIPELINE_S3_ENDPOINT", value=argo.s3_endpoint),
        SecretEnv(name="PIPELINE_S3_ACCESS_KEY", secret_name=argo.s3_secret, secret_key="accesskey"),
        SecretEnv(name="PIPELINE_S3_SECRET_KEY", secret_name=argo.s3_secret, secret_key="secretkey"),
        Env(name="HOME", value="/tmp"),
        Env(name="TMPDIR", value="/tmp"),
        Env(name="PIPELINE_ACTOR", value="argo/{{workflow.name}}"),
    ]


def _scratch() -> list[m.VolumeMount]:
    return [m.VolumeMount(name=SCRATCH_VOLUME, mount_path="/tmp")]


def _semaphores(groups: tuple[str, ...]) -> m.Synchronization | None:
    if not groups:
        return None
    return m.Synchronization(
        semaphores=[
            m.SemaphoreRef(config_map_key_ref=m.ConfigMapKeySelector(name=LIMITS_CONFIGMAP, key=group))
            for group in sorted(groups)
        ]
    )


def _retry(spec: StepSpec, cfg: PipelineConfig) -> RetryStrategy:
    retries = cfg.runner.retries
    limit = spec.retries if spec.retries is not None else retries.limit
    return RetryStrategy(
        limit=str(limit),
        retry_policy="Always",
        # The not-retryable exit: the same arguments fail the same way.
        expression=f"asInt(lastRetry.exitCode) != {EXIT_NOT_RETRYABLE}",
        backoff=m.Backoff(
            duration=f"{int(retries.backoff_seconds)}s",
            factor=str(int(retries.factor)),
            cap=f"{int(retries.max_backoff_seconds)}s",
        ),
    )


def step_inputs(spec: StepSpec) -> tuple[str, ...]:
    """The parameters a step's template takes: those its shape's partition is made of (the
    range-wide ones, SHARED_PARAMS, it reads from the workflow)."""
    shape = spec.shape.name
    if shape == "month":
        own: tuple[str, ...] = ("month", "month_run_id", "month_as_of", "season", "profile", "worlds")
    elif shape == "settled_date":
        own = ("game_date", "settled_as_of", "season")
    else:
        own = ("game_date", "run_id", "as_of", "season", "profile", "worlds")
        own += (DRAFT_GROUP_PARAM,) if shape == "draft_group" else ()
    return own


def step_command(spec: StepSpec, outputs_dir: str = OUTPUTS_DIR) -> list[str]:
    """A step's command on Argo, the one both modes run: `step_argv` filled with the template's
    inputs (its partition) and the workflow's range-wide parameters. Only where it writes the
    files Argo reads as outputs differs: a pack gives each of its containers its own directory."""
    shape = spec.shape.name
    return step_argv(
        spec.asset,
        game_date=None if shape == "month" else _ref("game_date"),
        month=_ref("month") if shape == "month" else None,
        run_id=None if shape == "settled_date" else _ref("month_run_id" if shape == "month" else "run_id"),
        as_of=_ref({"month": "month_as_of", "settled_date": "settled_as_of"}.get(shape, "as_of")),
        store=_global("store"),
        correlation_id=_global("correlation_id"),
        season=_ref("season"),
        draft_group_id=_ref(DRAFT_GROUP_PARAM) if shape == "draft_group" else None,
        profile=None if shape == "settled_date" else _ref("profile"),
        worlds=None if shape == "settled_date" else _ref("worlds"),
        orchestrator_run_id="{{workflow.name}}",
        outputs_dir=outputs_dir,
        reason=_global("reason"),
        force=_global("rerun"),
    )


def step_outputs(spec: StepSpec, outputs_dir: str = OUTPUTS_DIR, prefix: str = "") -> list[Parameter]:
    """What a step's node outputs: its status, summary and metrics (defaults for a step that
    wrote none), and for the draft-group source the JSON list `withParam` fans out over."""
    files = {
        "status": ("status", "unknown"),
        "summary": ("summary.json", "{}"),
        "metrics": ("metrics.json", "{}"),
    }
    if spec.asset == DRAFT_GROUP_SOURCE[0]:
        files["draft_groups"] = ("draft_groups.json", "[]")
    return [
        Parameter(name=prefix + name, value_from=m.ValueFrom(path=f"{outputs_dir}/{file}", default=default))
        for name, (file, default) in files.items()
    ]


def step_template(spec: StepSpec, cfg: PipelineConfig) -> Container:
    argo = cfg.argo
    shape = spec.shape.name
    r = spec.resources
    return Container(
        name=template_name(spec.asset),
        image=argo.image,
        image_pull_policy=argo.image_pull_policy,
        command=step_command(spec),
        inputs=[Parameter(name=p) for p in step_inputs(spec)],
        outputs=step_outputs(spec),
        resources=m.ResourceRequirements(
            requests={"cpu": r.cpu, "memory": r.memory},
            limits={"cpu": r.cpu_limit, "memory": r.memory_limit},
        ),
        retry_strategy=_retry(spec, cfg),
        # The pod's own deadline, per attempt (workflow/controller/workflowpod.go copies it to
        # the pod spec; workflow/validate/validate.go allows it on leaf templates only).
        active_deadline_seconds=str(spec.timeout_s),  # IntOrString: the schema types it as a string
        synchronization=_semaphores(spec.concurrency),
        labels={
            **PART_OF,
            "projections/asset": spec.asset,
            **({"projections/game-date": _ref("game_date")} if shape != "month" else {}),
            **({"projections/run-id": _ref("run_id")} if shape not in ("month", "settled_date") else {}),
            CORRELATION_LABEL: _global("correlation_id"),
        },
        annotations={"projections/description": spec.description},
        env=_env(cfg),
        volume_mounts=_scratch(),
        security_context=_container_security(),
        # A crash that leaves no message still shows its last log lines in the Argo UI.
        termination_message_policy="FallbackToLogsOnError",
        metrics=step_metrics(spec.asset),
    )


# How a finished step attempt went, from its own outputs (evaluated by the controller when the
# node finishes: `outputs.parameters.*` of the template's own node are in its metric scope).
def step_outcome(status: str, summary: str) -> str:
    """The outcome label (ran, reused, skipped, failed) from a step's status and summary outputs."""
    return (
        f"{{{{={status} == 'success' ? "
        f"(jsonpath({summary}, '$.reused') == true ? 'reused' : 'ran') : "
        f"({status} == 'skipped' ? 'skipped' : 'failed')}}}}"
    )


STEP_OUTCOME = step_outcome("outputs.parameters.status", "outputs.parameters.summary")
DURATION_HELP = "Duration of a finished step attempt, by asset and Argo node phase"
OUTCOME_HELP = "Finished step attempts by asset and outcome (ran, reused, skipped, failed)"


def step_metrics(asset: str) -> list[Any]:
    """Per step template: its duration and its outcome, labelled by asset (docs/argo-rules.md
    §8.4). Help strings are the same for every template: Argo refuses a metric whose help
    differs from the one it first registered under that name."""
    return [
        Histogram(
            name="projections_step_duration_seconds",
            help=DURATION_HELP,
            labels=[Label(key="asset", value=asset), Label(key="phase", value="{{status}}")],
            value="{{duration}}",
            buckets=list(DURATION_BUCKETS),
        ),
        Counter(
            name="projections_step_outcome_total",
            help=OUTCOME_HELP,
            labels=[Label(key="asset", value=asset), Label(key="outcome", value=STEP_OUTCOME)],
            value="1",
        ),
    ]


def partition_dag(graph: Graph) -> DAG:
    """A slate's DAG: a task per step of the `slate` stage, and one task that fans the
    draft-group steps out over the groups `dk.salaries` lists (`withParam`).

    The skip rule both runners share (docs/argo-rules.md):

    - `depends` names the upstream tasks bare, which Argo satisfies by Succeeded or Skipped; a
      Failed or Omitted upstream makes the task Omitted (the local runner: blocked).
    - A step that may skip exits 0 and outputs `status=skipped`. Every task downstream of it
      carries a `when` on that output, so it shows as Skipped (the local runner: skipped, with
      the reason) and the workflow stays green. Argo resolves `tasks.X.outputs` for any
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
            _task(graph, asset, {task_of(u) for u in _hard_deps(graph, asset)} - {None}, PARTITION_PARAMS)
        )
    if groups:
        outer = sorted(
            {
                t
                for a in groups
                for u in _hard_deps(graph, a)
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
                arguments=[Parameter(name=p, value=_ref(p)) for p in _dag_inputs(graph, groups)]
                + [Parameter(name=DRAFT_GROUP_PARAM, value="{{item}}")],
                depends=" && ".join(sorted({*outer, source})),
            )
        )
    return DAG(
        name="partition",
        inputs=[Parameter(name=p) for p in PARTITION_PARAMS],
        # As the local runner: a failed step holds back only its own downstream steps.
        fail_fast=False,
        tasks=_in_dependency_order(tasks),
    )


def _in_dependency_order(tasks: list[Task]) -> list[Task]:
    """Tasks listed after the tasks they depend on (easier to read, and to check)."""
    placed: list[Task] = []
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
    inputs = (*_dag_inputs(graph, groups), DRAFT_GROUP_PARAM)
    tasks = [
        _task(graph, a, {template_name(u) for u in _hard_deps(graph, a) if u in groups}, inputs)
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
                with_param=_ref(shared_param(a)),
                arguments=[
                    Parameter(name=p, value="{{item.%s}}" % p)  # noqa: UP031
                    for p in step_inputs(graph.specs[a])
                ],
            )
            for a in assets
        ],
    )


def _hard_deps(graph: Graph, asset: str) -> list[str]:
    return [i.asset for i in graph.specs[asset].inputs if i.asset in graph.specs and i.mapping != "window"]


def _dag_inputs(graph: Graph, assets: list[str]) -> tuple[str, ...]:
    used = {p for a in assets for p in step_inputs(graph.specs[a])} - {DRAFT_GROUP_PARAM}
    return tuple(p for p in PARTITION_PARAMS if p in used)


def _task(
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
        arguments=[Parameter(name=p, value=_ref(p)) for p in params],
        depends=" && ".join(sorted(ups)) if ups else None,
        when=" && ".join(_not_skipped(s) for s in sources) if sources else None,
    )


def _not_skipped(asset: str) -> str:
    # `when` is a govaluate expression after substitution: quote both sides as strings.
    return "'{{tasks.%s.outputs.parameters.status}}' != '%s'" % (template_name(asset), SKIPPED)  # noqa: UP031


def _spec_common(cfg: PipelineConfig) -> dict[str, Any]:
    """Spec fields of every object that runs pods.

    Argo takes `volumes`, the pod security context, the service account and podGC from the
    spec of the workflow that runs, not from a WorkflowTemplate reached by `templateRef`
    (docs/argo-rules.md), so the CronWorkflow and the range Workflow carry them too.
    """
    return {
        "namespace": cfg.argo.namespace,
        "service_account_name": cfg.argo.service_account,
        "security_context": _pod_security(),
        "pod_metadata": m.Metadata(labels=dict(PART_OF)),
        "artifact_repository_ref": m.ArtifactRepositoryRef(config_map=ARTIFACT_CONFIGMAP, key="default"),
        "archive_logs": True,
        "pod_gc": m.PodGC(strategy="OnPodSuccess", delete_delay_duration="10m"),
        "volumes": [EmptyDirVolume(name=SCRATCH_VOLUME, size_limit="2Gi")],
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
        **_spec_common(cfg),
    )


# ---- packed mode: a slate's steps in one pod ------------------------------------------------
# A containerSet template runs its containers in one pod, each a node of its own in the UI
# (docs/argo-rules.md §9). A packed partition is one pod for the slate's steps up to the
# draft-group fan-out, one pod per draft group, and a pod per step that must be able to skip.
PACKED_TEMPLATE = "projections-partition-packed"
SLATE_PACK = "slate-pack"
DRAFT_GROUP_PACK = "draft-group-pack"
PACK_MAIN = "main"  # validate.go: a container set with outputs needs a container named main
CHUNK = "chunk"
CHUNK_PACKED = "chunk-packed"
MODE_LABEL = "projections/mode"
MODES = {True: "packed", False: "one pod per step"}
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
        reads = set(_hard_deps(graph, asset)) & set(pack)
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
        env=[e.build() for e in _env(cfg)],
        resources=m.ResourceRequirements(
            requests={"cpu": share[0], "memory": share[1]},
            limits={"cpu": r.cpu_limit, "memory": r.memory_limit},
        ),
        security_context=_container_security(),
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
        security_context=_container_security(),
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
        longest[asset] = own + max((longest[u] for u in _hard_deps(graph, asset) if u in longest), default=0)
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
        _pack_container(s, cfg, [template_name(u) for u in _hard_deps(graph, s.asset) if u in assets], share)
        for s in specs
    ]
    below = {u for a in assets for u in _hard_deps(graph, a)}
    containers.append(_pack_main(cfg, [template_name(a) for a in assets if a not in below]))
    attempts = pack_attempts(specs, cfg)
    backoff = int(cfg.runner.retries.backoff_seconds)
    inputs = _dag_inputs(graph, assets) + ((DRAFT_GROUP_PARAM,) if name == DRAFT_GROUP_PACK else ())
    return ContainerSet(
        name=name,
        containers=containers,
        volume_mounts=_scratch(),  # the set's mounts reach every container (GetContainers)
        container_set_retry_strategy=m.ContainerSetRetryStrategy(
            retries=m.IntOrString(str(attempts)),  # IntOrString: a string in the schema
            duration=f"{backoff}s",
        ),
        inputs=[Parameter(name=p) for p in inputs],
        outputs=pack_outputs(specs),
        active_deadline_seconds=str(pack_deadline(graph, assets, attempts, backoff)),
        synchronization=_semaphores(tuple(sorted({g for s in specs for g in s.concurrency}))),
        labels={
            **PART_OF,
            "projections/pack": name,
            "projections/game-date": _ref("game_date"),
            "projections/run-id": _ref("run_id"),
            CORRELATION_LABEL: _global("correlation_id"),
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
            arguments=[Parameter(name=p, value=_ref(p)) for p in _dag_inputs(graph, pack)],
        )
    ]
    for asset in (a for a in graph.order if stage(graph, a) == "slate" and a not in pack):
        ups = {t for u in _hard_deps(graph, asset) if (t := task_of(u))}
        tasks.append(_task(graph, asset, ups, PARTITION_PARAMS, ref=PARTITION_TEMPLATE))
    outer = {
        t
        for a in groups
        for u in _hard_deps(graph, a)
        if stage(graph, u) != "draft_group"
        if (t := task_of(u))
    }
    tasks.append(
        Task(
            name=DRAFT_GROUPS_TASK,
            template=DRAFT_GROUP_PACK,
            with_param="{{tasks.%s.outputs.parameters.draft_groups}}" % SLATE_PACK,  # noqa: UP031
            arguments=[Parameter(name=p, value=_ref(p)) for p in _dag_inputs(graph, groups)]
            + [Parameter(name=DRAFT_GROUP_PARAM, value="{{item}}")],
            depends=" && ".join(sorted(outer | {SLATE_PACK})),
        )
    )
    return DAG(
        name="partition",
        inputs=[Parameter(name=p) for p in PARTITION_PARAMS],
        fail_fast=False,  # as the local runner: a failure holds back only its own downstream
        tasks=_in_dependency_order(tasks),
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
        **_spec_common(cfg),
    )


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
                with_param=_ref("partitions"),
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
        env=_env(cfg),
        volume_mounts=_scratch(),
        security_context=_container_security(),
        # A crash that leaves no message still shows its last log lines in the Argo UI.
        termination_message_policy="FallbackToLogsOnError",
    )


def range_template(graph: Graph, cfg: PipelineConfig) -> WorkflowTemplate:
    plan = _ops_container(
        "plan",
        [
            "plan",
            "--catch-up-days",
            _ref("catch_up_days"),
            "--store",
            _ref("store"),
            "--backfill-id",
            _ref("correlation_id"),
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
        **_spec_common(cfg),
    )


def _plan_output(name: str) -> str:
    return "{{steps.plan.outputs.parameters.%s}}" % name  # noqa: UP031 - braces would need doubling


def shared_assets(graph: Graph) -> list[str]:
    return [a for a in graph.order if stage(graph, a) == "shared"]


def _shared_task(graph: Graph, values: dict[str, str]) -> dict[str, Any]:
    """Arguments of a call to the shared stage: each asset's list, then the store and id."""
    return {
        "template_ref": m.TemplateRef(name=RANGE_TEMPLATE, template=SHARED_DAG),
        "arguments": [Parameter(name=shared_param(a), value=values[a]) for a in shared_assets(graph)],
        "continue_on": _continue_on_failure(),  # a window reads whatever of it succeeded
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


def _continue_on_failure() -> m.ContinueOn:
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
            "annotations": {TITLE: _ref("title"), DESCRIPTION: _ref("description")},
        },
        "spec": {
            "workflowTemplateRef": {"name": RANGE_TEMPLATE},
            **({"entrypoint": CHUNK_PACKED} if packed else {}),
            "arguments": {
                "parameters": [
                    {"name": "partitions", "value": _ref("partitions")},
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
    stage_first = graph is not None and bool(shared_assets(graph)) and any((shared or {}).values())
    run_chunk = Resource(
        name="run-chunk",
        inputs=[Parameter(name="partitions"), Parameter(name="title"), Parameter(name="description")],
        action="create",
        set_owner_reference=True,
        success_condition="status.phase == Succeeded",
        failure_condition="status.phase in (Failed, Error)",
        manifest=child_manifest(cfg, packed),
    )
    fan_out = DAG(
        name="range",
        parallelism=1,  # chunks run one after another; partitions inside a chunk run in parallel
        fail_fast=False,  # a chunk with a failed partition must not stop the later chunks
        tasks=[
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
                continue_on=_continue_on_failure(),
                depends=SHARED_DAG if stage_first else None,
            )
            for number, chunk in enumerate(chunks, start=1)
        ]
        + (
            [
                Task(
                    name=SHARED_DAG,
                    **_shared_task(
                        graph,  # type: ignore[arg-type]
                        {
                            a: json.dumps((shared or {}).get(a, []), separators=(",", ":"))
                            for a in shared_assets(graph)
                        },  # type: ignore[arg-type]
                    ),
                )
            ]
            if stage_first
            else []
        ),
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
        **_spec_common(cfg),
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


# The daily run's words, filled by the controller when it starts the workflow: it substitutes
# the workflow's global variables into the spec (workflowMetadata included) before copying
# workflowMetadata.annotations onto the Workflow (docs/argo-rules.md §8.1).
DAILY_DAY = (
    "{{workflow.creationTimestamp.Y}}-{{workflow.creationTimestamp.m}}-{{workflow.creationTimestamp.d}}"
)
DAILY_TITLE = f"Projections daily {DAILY_DAY}"
DAILY_DESCRIPTION = (
    "Daily range started " + DAILY_DAY + " (UTC): today's slates plus "
    "{{workflow.parameters.catch_up_days}} catch-up day(s), planned in-cluster by the plan step "
    "(its partitions output lists them); as-of pretip per slate; correlation id {{workflow.name}}"
)


def chunk_task_name(number: int, chunk: list[dict[str, str]]) -> str:
    first, last = chunk[0]["game_date"], chunk[-1]["game_date"]
    return f"chunk-{number:03d}-{first}" + (f"-to-{last}" if last != first else "")


def cron_workflow(graph: Graph, cfg: PipelineConfig) -> CronWorkflow:
    argo = cfg.argo
    shared = (
        [
            Step(
                name=SHARED_DAG,
                **_shared_task(
                    graph,
                    {a: _plan_output(shared_param(a)) for a in shared_assets(graph)},
                ),
            )
        ]
        if shared_assets(graph)
        else []
    )
    daily = Steps(
        name="daily",
        sub_steps=[
            Step(
                name="plan",
                template_ref=m.TemplateRef(name=RANGE_TEMPLATE, template="plan"),
                arguments=_from_workflow("catch_up_days", "store", "correlation_id"),
            ),
            *shared,
            Step(
                name="run",
                template_ref=m.TemplateRef(name=RANGE_TEMPLATE, template=CHUNK),
                arguments=[
                    Parameter(name="partitions", value="{{steps.plan.outputs.parameters.partitions}}")
                ],
                continue_on=_continue_on_failure(),
            ),
        ],
    )
    return CronWorkflow(
        name=CRON_NAME,
        labels=dict(PART_OF),
        schedules=[argo.schedule],
        timezone=cfg.timezone,
        concurrency_policy="Forbid",
        starting_deadline_seconds=argo.starting_deadline_seconds,
        successful_jobs_history_limit=argo.history_success,
        failed_jobs_history_limit=argo.history_failed,
        entrypoint="daily",
        on_exit=EXIT_HANDLER,
        # Daily runs are named by the controller; label them like submitted ranges so links and
        # `kubectl get -l` find them by correlation id (operator.go updateWorkflowMetadata).
        workflow_metadata=m.WorkflowMetadata(
            labels_from={CORRELATION_LABEL: m.LabelValueFrom(expression="workflow.name")},
            annotations={TITLE: DAILY_TITLE, DESCRIPTION: DAILY_DESCRIPTION},
        ),
        arguments=[
            Parameter(name="catch_up_days", value=str(cfg.catch_up_days)),
            Parameter(name="store", value=argo.store_url),
            Parameter(name="correlation_id", value="{{workflow.name}}"),
            Parameter(name="reason", value=""),
            Parameter(name="rerun", value=RERUN_VALUES[True]),
            Parameter(name="webhook_url", value=argo.webhook_url or "none"),
        ],
        templates=[daily, summarize_template(cfg)],
        **_spec_common(cfg),
    )


def to_dict(obj: Workflow | WorkflowTemplate | CronWorkflow) -> dict[str, Any]:
    return obj.to_dict()  # type: ignore[no-any-return]
