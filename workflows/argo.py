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
# Every task of a range: its id, the store, why it is run (`--reason`; "" for daily runs), and
# whether a success manifest is reused (`--no-force`) or recomputed into a new attempt
# (`--force`, what `pipeline submit --no-resume` asks for).
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
    """The parameters a step's template takes: those its shape's partition is made of."""
    shape = spec.shape.name
    if shape == "month":
        own: tuple[str, ...] = ("month", "month_run_id", "month_as_of", "season", "profile", "worlds")
    elif shape == "settled_date":
        own = ("game_date", "settled_as_of", "season")
    else:
        own = ("game_date", "run_id", "as_of", "season", "profile", "worlds")
        own += (DRAFT_GROUP_PARAM,) if shape == "draft_group" else ()
    return own + SHARED_PARAMS


def step_template(spec: StepSpec, cfg: PipelineConfig) -> Container:
    argo = cfg.argo
    shape = spec.shape.name
    command = step_argv(
        spec.asset,
        game_date=None if shape == "month" else _ref("game_date"),
        month=_ref("month") if shape == "month" else None,
        run_id=None if shape == "settled_date" else _ref("month_run_id" if shape == "month" else "run_id"),
        as_of=_ref({"month": "month_as_of", "settled_date": "settled_as_of"}.get(shape, "as_of")),
        store=_ref("store"),
        correlation_id=_ref("correlation_id"),
        season=_ref("season"),
        draft_group_id=_ref(DRAFT_GROUP_PARAM) if shape == "draft_group" else None,
        profile=None if shape == "settled_date" else _ref("profile"),
        worlds=None if shape == "settled_date" else _ref("worlds"),
        orchestrator_run_id="{{workflow.name}}",
        outputs_dir=OUTPUTS_DIR,
        reason=_ref("reason"),
        force=_ref("rerun"),
    )
    outputs = [
        Parameter(name="status", value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/status", default="unknown")),
        Parameter(name="summary", value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/summary.json", default="{}")),
        Parameter(name="metrics", value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/metrics.json", default="{}")),
    ]
    if spec.asset == DRAFT_GROUP_SOURCE[0]:
        # A JSON list of the slate's draft groups, which `withParam` fans out over.
        outputs.append(
            Parameter(
                name="draft_groups",
                value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/draft_groups.json", default="[]"),
            )
        )
    r = spec.resources
    return Container(
        name=template_name(spec.asset),
        image=argo.image,
        image_pull_policy=argo.image_pull_policy,
        command=command,
        inputs=[Parameter(name=p) for p in step_inputs(spec)],
        outputs=outputs,
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
            CORRELATION_LABEL: _ref("correlation_id"),
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
STEP_OUTCOME = (
    "{{=outputs.parameters.status == 'success' ? "
    "(jsonpath(outputs.parameters.summary, '$.reused') == true ? 'reused' : 'ran') : "
    "(outputs.parameters.status == 'skipped' ? 'skipped' : 'failed')}}"
)


def step_metrics(asset: str) -> list[Any]:
    """Per step template: its duration and its outcome, labelled by asset (docs/argo-rules.md
    §8.4). Help strings are the same for every template: Argo refuses a metric whose help
    differs from the one it first registered under that name."""
    return [
        Histogram(
            name="projections_step_duration_seconds",
            help="Duration of a finished step attempt, by asset and Argo node phase",
            labels=[Label(key="asset", value=asset), Label(key="phase", value="{{status}}")],
            value="{{duration}}",
            buckets=list(DURATION_BUCKETS),
        ),
        Counter(
            name="projections_step_outcome_total",
            help="Finished step attempts by asset and outcome (ran, reused, skipped, failed)",
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
        tasks.append(_task(graph, asset, {task_of(u) for u in _hard_deps(graph, asset)} - {None}, ALL_PARAMS))
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
        inputs=[Parameter(name=p) for p in ALL_PARAMS],
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
    return DAG(
        name=SHARED_DAG,
        inputs=[
            *(Parameter(name=shared_param(a), value="[]") for a in assets),
            *(Parameter(name=p) for p in SHARED_PARAMS),
        ],
        parallelism=4,
        fail_fast=False,
        tasks=[
            Task(
                name=template_name(a),
                template_ref=m.TemplateRef(name=PARTITION_TEMPLATE, template=template_name(a)),
                with_param=_ref(shared_param(a)),
                arguments=[
                    Parameter(name=p, value="{{item.%s}}" % p if p in SHARED_ITEM else _ref(p))  # noqa: UP031
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
    return tuple(p for p in ALL_PARAMS if p in used)


def _task(graph: Graph, asset: str, ups: set[str], available: tuple[str, ...]) -> Task:
    sources = graph.skip_sources(asset)
    if sources and graph.specs[asset].may_skip:
        raise GraphError(
            f"step {asset!r} may skip but sits below {', '.join(sources)}, which may skip too; "
            "Argo could not read its status when it is skipped"
        )
    params = [p for p in step_inputs(graph.specs[asset]) if p in available]
    return Task(
        name=template_name(asset),
        template=template_name(asset),
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
    chunk = DAG(
        name="chunk",
        inputs=[Parameter(name="partitions"), *(Parameter(name=p) for p in SHARED_PARAMS)],
        parallelism=cfg.argo.parallelism,
        fail_fast=False,  # a failed partition must not stop its siblings
        tasks=[
            Task(
                name="partition",
                template_ref=m.TemplateRef(name=PARTITION_TEMPLATE, template="partition"),
                with_param=_ref("partitions"),
                arguments=[Parameter(name=p, value="{{item.%s}}" % p) for p in PARTITION_PARAMS]  # noqa: UP031
                + [Parameter(name=p, value=_ref(p)) for p in SHARED_PARAMS],
            )
        ],
    )
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
        entrypoint="chunk",
        arguments=[Parameter(name="partitions"), *(Parameter(name=p) for p in SHARED_PARAMS)],
        templates=[chunk, plan, *([shared_dag(graph)] if shared_assets(graph) else [])],
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
        "arguments": [Parameter(name=shared_param(a), value=values[a]) for a in shared_assets(graph)]
        + _from_workflow(*SHARED_PARAMS),
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


def child_manifest(cfg: PipelineConfig) -> str:
    """The child workflow a range creates per chunk (Argo fills the `{{...}}` at run time)."""
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
        manifest=child_manifest(cfg),
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
        labels={**PART_OF, CORRELATION_LABEL: correlation_id},
        annotations={
            TITLE: range_title(partitions),
            DESCRIPTION: range_description(
                partitions, len(chunks), correlation_id=correlation_id, as_of_mode=as_of_mode, reason=reason
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
) -> str:
    parts = [f"{len(partitions)} partition(s) in {chunks} chunk(s)"]
    parts.append(f"as-of mode {as_of_mode}" if as_of_mode else "as-of per partition")
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
                template_ref=m.TemplateRef(name=RANGE_TEMPLATE, template="chunk"),
                arguments=[
                    Parameter(name="partitions", value="{{steps.plan.outputs.parameters.partitions}}"),
                    *_from_workflow(*SHARED_PARAMS),
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
