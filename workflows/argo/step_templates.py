"""One step as an Argo template: its command (`step_argv` filled with parameter references), inputs, outputs, retries, semaphores, security context and metrics."""

from __future__ import annotations

from typing import Any

from hera.workflows import (
    Container,
    Counter,
    Env,
    Histogram,
    Label,
    Parameter,
    RetryStrategy,
    SecretEnv,
)
from hera.workflows import models as m

from steps.runtime.command import step_argv
from steps.runtime.errors import EXIT_NOT_RETRYABLE
from steps.runtime.manifest import STOPPED_SHORT
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.step import StepSpec
from workflows.argo.names import (
    CORRELATION_LABEL,
    DRAFT_GROUP_PARAM,
    DURATION_BUCKETS,
    LIMITS_CONFIGMAP,
    OUTPUTS_DIR,
    PART_OF,
    SCRATCH_VOLUME,
    SUCCESS,
    input_ref,
    template_name,
    workflow_ref,
)
from workflows.dag.config import PipelineConfig


def pod_security() -> m.PodSecurityContext:
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=10001,
        run_as_group=10001,
        fs_group=10001,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def container_security() -> m.SecurityContext:
    return m.SecurityContext(
        read_only_root_filesystem=True,
        allow_privilege_escalation=False,
        run_as_non_root=True,
        capabilities=m.Capabilities(drop=["ALL"]),
    )


def step_env(cfg: PipelineConfig) -> list[Any]:
    argo = cfg.argo
    return [
        Env(name="PIPELINE_S3_ENDPOINT", value=argo.s3_endpoint),
        SecretEnv(name="PIPELINE_S3_ACCESS_KEY", secret_name=argo.s3_secret, secret_key="accesskey"),
        SecretEnv(name="PIPELINE_S3_SECRET_KEY", secret_name=argo.s3_secret, secret_key="secretkey"),
        Env(name="HOME", value="/tmp"),
        Env(name="TMPDIR", value="/tmp"),
        Env(name="PIPELINE_ACTOR", value="argo/{{workflow.name}}"),
    ]


def scratch_mounts() -> list[m.VolumeMount]:
    return [m.VolumeMount(name=SCRATCH_VOLUME, mount_path="/tmp")]


def semaphores(groups: tuple[str, ...]) -> m.Synchronization | None:
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
        game_date=None if shape == "month" else input_ref("game_date"),
        month=input_ref("month") if shape == "month" else None,
        run_id=None
        if shape == "settled_date"
        else input_ref("month_run_id" if shape == "month" else "run_id"),
        as_of=input_ref({"month": "month_as_of", "settled_date": "settled_as_of"}.get(shape, "as_of")),
        store=workflow_ref("store"),
        correlation_id=workflow_ref("correlation_id"),
        season=input_ref("season"),
        draft_group_id=input_ref(DRAFT_GROUP_PARAM) if shape == "draft_group" else None,
        profile=None if shape == "settled_date" else input_ref("profile"),
        worlds=None if shape == "settled_date" else input_ref("worlds"),
        orchestrator_run_id="{{workflow.name}}",
        outputs_dir=outputs_dir,
        reason=workflow_ref("reason"),
        force=workflow_ref("rerun"),
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
        synchronization=semaphores(spec.concurrency),
        labels={
            **PART_OF,
            "projections/asset": spec.asset,
            **({"projections/game-date": input_ref("game_date")} if shape != "month" else {}),
            **({"projections/run-id": input_ref("run_id")} if shape not in ("month", "settled_date") else {}),
            CORRELATION_LABEL: workflow_ref("correlation_id"),
        },
        annotations={"projections/description": spec.description},
        env=step_env(cfg),
        volume_mounts=scratch_mounts(),
        security_context=container_security(),
        # A crash that leaves no message still shows its last log lines in the Argo UI.
        termination_message_policy="FallbackToLogsOnError",
        metrics=step_metrics(spec.asset),
    )


# How a finished step attempt went, from its own outputs (evaluated by the controller when the
# node finishes: `outputs.parameters.*` of the template's own node are in its metric scope).
def step_outcome(status: str, summary: str) -> str:
    """The outcome label (ran, reused, not_due, not_promoted, failed) from a step's status and
    summary outputs: the words of the local runner's TaskStatus (docs/decisions.md D21)."""
    otherwise = "'failed'"  # a failed manifest, or none (the output's default)
    for word in reversed(STOPPED_SHORT):
        otherwise = f"({status} == '{word}' ? '{word}' : {otherwise})"
    return (
        f"{{{{={status} == '{SUCCESS}' ? "
        f"(jsonpath({summary}, '$.reused') == true ? 'reused' : 'ran') : "
        f"{otherwise}}}}}"
    )


STEP_OUTCOME = step_outcome("outputs.parameters.status", "outputs.parameters.summary")


DURATION_HELP = "Duration of a finished step attempt, by asset and Argo node phase"


OUTCOME_HELP = "Finished step attempts by asset and outcome (ran, reused, not_due, not_promoted, failed)"


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
