"""What the compiled objects are called, the parameters a step template reads, and the labels and annotations the Argo UI shows."""

from __future__ import annotations

from hera.workflows import (
    Parameter,
)

from steps.runtime.manifest import Status

PARTITION_TEMPLATE = "projections-partition"


RANGE_TEMPLATE = "projections-range"


CRON_NAME = "projections-daily"


LIMITS_CONFIGMAP = "projections-limits"


ARTIFACT_CONFIGMAP = "artifact-repositories"


OUTPUTS_DIR = "/tmp/outputs"


SUCCESS: Status = "success"  # the `status` output (its manifest status) that lets what reads a step run


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


def template_name(asset: str) -> str:
    return asset.replace(".", "-").replace("_", "-")


def input_ref(name: str) -> str:
    return "{{inputs.parameters.%s}}" % name  # noqa: UP031 - braces would need doubling


def workflow_ref(name: str) -> str:
    return "{{workflow.parameters.%s}}" % name  # noqa: UP031 - braces would need doubling


def from_workflow(*names: str) -> list[Parameter]:
    """Arguments that pass workflow parameters of the same names through."""
    return [Parameter(name=n, value="{{workflow.parameters.%s}}" % n) for n in names]  # noqa: UP031


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
