"""The daily CronWorkflow: plan (with the catch-up window), chunk, then summarize; and the plain-dict form `pipeline render` writes."""

from __future__ import annotations

from typing import Any

from hera.workflows import (
    CronWorkflow,
    Parameter,
    Step,
    Steps,
    Workflow,
    WorkflowTemplate,
)
from hera.workflows import models as m

from workflows.argo.names import (
    CHUNK,
    CORRELATION_LABEL,
    CRON_NAME,
    DESCRIPTION,
    EXIT_HANDLER,
    PART_OF,
    RANGE_TEMPLATE,
    RERUN_VALUES,
    SHARED_DAG,
    TITLE,
    from_workflow,
)
from workflows.argo.partition_dag import shared_assets, shared_param, spec_common
from workflows.argo.ranges import continue_on_failure, plan_output, shared_task, summarize_template
from workflows.dag.config import PipelineConfig
from workflows.dag.graph import Graph

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


def cron_workflow(graph: Graph, cfg: PipelineConfig) -> CronWorkflow:
    argo = cfg.argo
    shared = (
        [
            Step(
                name=SHARED_DAG,
                **shared_task(
                    graph,
                    {a: plan_output(shared_param(a)) for a in shared_assets(graph)},
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
                arguments=from_workflow("catch_up_days", "store", "correlation_id"),
            ),
            *shared,
            Step(
                name="run",
                template_ref=m.TemplateRef(name=RANGE_TEMPLATE, template=CHUNK),
                arguments=[
                    Parameter(name="partitions", value="{{steps.plan.outputs.parameters.partitions}}")
                ],
                continue_on=continue_on_failure(),
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
        **spec_common(cfg),
    )


def to_dict(obj: Workflow | WorkflowTemplate | CronWorkflow) -> dict[str, Any]:
    return obj.to_dict()  # type: ignore[no-any-return]
