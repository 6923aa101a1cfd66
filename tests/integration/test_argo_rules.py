"""Argo's rules (docs/argo-rules.md) held against every object the project ships or submits,
and the local runner held against the compiled DAG: the same steps run, skip or are held back
for every pattern of step outcomes."""

from __future__ import annotations

import copy
import json
import random
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from steps.runtime.manifest import STOPPED_SHORT
from steps.runtime.store import Store, open_store
from tests.argo_rules import (
    Unresolved,
    child_workflows,
    exec_spec,
    global_parameter_errors,
    sample_item,
    sample_shared,
    simulate_dag,
    submitted_objects,
    volume_errors,
)
from tests.chart import by_kind, chart_objects
from workflows.argo import build as argo
from workflows.dag.config import load_config
from workflows.dag.draft_groups import expand_draft_groups
from workflows.dag.graph import pipeline_graph
from workflows.dag.model import Plan, PlannedStep
from workflows.dag.outcome import TaskResult
from workflows.dag.plan import make_plan
from workflows.local.runner import LocalRunner

CONFIG = load_config()
GRAPH = pipeline_graph()


def library() -> dict[str, dict[str, Any]]:
    return by_kind(chart_objects(), "WorkflowTemplate")


@pytest.mark.parametrize(
    "obj",
    submitted_objects(chart_objects()),
    ids=lambda o: o["metadata"].get("name") or o["metadata"]["generateName"],
)
def test_every_mount_is_declared_by_the_spec_that_runs_it(obj: dict[str, Any]) -> None:
    assert volume_errors(obj, library()) == []


def test_the_volume_rule_catches_a_template_ref_without_the_volume() -> None:
    """The defect a real cluster found: the CronWorkflow reached `plan` through templateRef
    while only the WorkflowTemplate declared `scratch`."""
    cron = by_kind(chart_objects(), "CronWorkflow")["projections-daily"]
    del cron["spec"]["workflowSpec"]["volumes"]
    errors = volume_errors(cron, library())
    assert any("plan" in e and "volume 'scratch' not found in workflow spec" in e for e in errors), errors
    rng = argo.to_dict(
        argo.range_workflow(
            graph=GRAPH,
            shared=sample_shared(),
            partitions=[sample_item()],
            correlation_id="x",
            store_url="s3://p",
            cfg=CONFIG,
        )
    )
    del rng["spec"]["volumes"]
    assert any("summarize" in e for e in volume_errors(rng, library()))


# ---- range-wide values are workflow parameters (docs/argo-rules.md §7.8) -------------------
@pytest.mark.parametrize(
    "obj",
    submitted_objects(chart_objects()),
    ids=lambda o: o["metadata"].get("name") or o["metadata"]["generateName"],
)
def test_every_global_parameter_is_an_argument_of_the_workflow_that_runs_it(obj: dict[str, Any]) -> None:
    assert global_parameter_errors(obj, library()) == []


def test_the_global_rule_catches_a_child_without_the_argument() -> None:
    """A chunk child that did not pass `store` would leave every step's `--store` unresolved."""
    rng = argo.to_dict(
        argo.range_workflow([sample_item()], correlation_id="x", store_url="s3://p", cfg=CONFIG, graph=GRAPH)
    )
    run_chunk = next(t for t in rng["spec"]["templates"] if t["name"] == "run-chunk")
    child = yaml.safe_load(run_chunk["resource"]["manifest"])
    child["spec"]["arguments"]["parameters"] = [
        p for p in child["spec"]["arguments"]["parameters"] if p["name"] != "store"
    ]
    lib = dict(library())
    lib[argo.RANGE_TEMPLATE] = copy.deepcopy(lib[argo.RANGE_TEMPLATE])
    lib[argo.RANGE_TEMPLATE]["spec"]["arguments"]["parameters"] = [
        p for p in lib[argo.RANGE_TEMPLATE]["spec"]["arguments"]["parameters"] if p["name"] != "store"
    ]
    errors = global_parameter_errors(child, lib)
    assert any("dk-salaries" in e and "workflow.parameters.store" in e for e in errors), errors


def test_every_workflow_that_runs_steps_gives_the_range_wide_values() -> None:
    """The range, each chunk child (its arguments joined over projections-range's) and the
    daily run all carry the range-wide values with a value: setGlobalParameters refuses an
    argument with neither value nor valueFrom."""
    cron = by_kind(chart_objects(), "CronWorkflow")[argo.CRON_NAME]
    rng = argo.to_dict(
        argo.range_workflow([sample_item()], correlation_id="x", store_url="s3://p", cfg=CONFIG, graph=GRAPH)
    )
    runs = [cron, rng, *child_workflows(rng, library())]
    assert len(runs) == 3
    for run in runs:
        given = {p["name"]: p for p in exec_spec(run, library())["arguments"]["parameters"]}
        for name in argo.SHARED_PARAMS:
            assert "value" in given[name], (run["metadata"], name)


def test_a_step_takes_only_its_partition_and_no_task_passes_range_wide_values() -> None:
    partition = argo.to_dict(argo.partition_template(GRAPH, CONFIG))
    templates = {t["name"]: t for t in partition["spec"]["templates"]}
    for asset in GRAPH.order:
        step = templates[argo.template_name(asset)]
        assert [p["name"] for p in step["inputs"]["parameters"]] == list(argo.step_inputs(GRAPH.specs[asset]))
        command = " ".join(step["container"]["command"])
        for name in argo.SHARED_PARAMS:
            assert "{{workflow.parameters.%s}}" % name in command  # noqa: UP031
    dags = [t for t in partition["spec"]["templates"] if "dag" in t]
    dags += [t for o in library().values() for t in o["spec"]["templates"] if "dag" in t]
    for dag in dags:
        assert not {p["name"] for p in dag.get("inputs", {}).get("parameters", [])} & set(argo.SHARED_PARAMS)
        for task in dag["dag"]["tasks"]:
            passed = {p["name"] for p in task.get("arguments", {}).get("parameters", [])}
            assert not passed & set(argo.SHARED_PARAMS), (dag["name"], task["name"])


# ---- one skip semantics on both runners ----------------------------------------------------
PARTITION_TEMPLATES = {
    t["name"]: t
    for t in argo.to_dict(argo.partition_template(GRAPH, CONFIG))["spec"]["templates"]
    if "dag" in t
}
PARTITION_DAG = PARTITION_TEMPLATES["partition"]
TASK_TO_ASSET = {argo.template_name(a): a for a in GRAPH.order}
MAY_SKIP = [a for a in GRAPH.order if GRAPH.specs[a].may_skip]
GROUPS = ["g1", "g2"]
SLATE = date(2024, 11, 18)


def outcome_of(pattern: dict[str, str], asset: str, group: str | None) -> str:
    """A pattern names a step (`asset`) or one draft group's step (`asset@group`)."""
    return pattern.get(f"{asset}@{group}") or pattern.get(asset, "success")


class ScriptedRunner(LocalRunner):
    """The local runner's real scheduling, with each step's outcome given instead of run, and
    the slate's draft groups fixed."""

    def __init__(self, pattern: dict[str, str], store: Store) -> None:
        super().__init__(store, GRAPH, CONFIG, correlation_id="conformance", mode="subprocess")
        self.pattern = pattern

    def run_task(self, node: PlannedStep) -> TaskResult:
        status = outcome_of(self.pattern, node.asset, node.partition.draft_group_id)
        result = self._result(node, status)  # type: ignore[arg-type]
        result.attempts = 1
        return result

    def _after(self, node: PlannedStep, result: TaskResult, results: dict, pending: list) -> None:  # type: ignore[type-arg]
        if node.asset == "dk.salaries" and result.status == "success":
            for new in expand_draft_groups(self.plan, self.store, node.partition.key, GROUPS, resume=True):
                self._admit(new, results, pending)


@pytest.fixture(scope="module")
def slate_plan(seeded_template: Path) -> Plan:
    """A real plan of one slate (its month, its window of settled slates, its steps)."""
    # The shared template is read, never written: other tests copy it.
    return make_plan(
        open_store(f"file://{seeded_template}"), GRAPH, CONFIG, start=SLATE, end=SLATE, remember=False
    )


def local_outcome(
    pattern: dict[str, str], plan: Plan, tmp: Path
) -> dict[tuple[str, str | None], tuple[str, bool]]:
    """Per slate step partition: its status, and whether the runner ran it."""
    fresh = copy.deepcopy(plan)
    results = ScriptedRunner(pattern, open_store(f"file://{tmp}", create=True)).run(fresh)
    return {
        (r.asset, r.partition_key.draft_group_id): (r.status, r.attempts > 0)
        for r in results
        # The slate's steps, and its month's schedule (a task of every slate's DAG on Argo).
        if r.slate == SLATE or argo.stage(GRAPH, r.asset) == "slate"
    }


def argo_outcome(pattern: dict[str, str]) -> tuple[dict[tuple[str, str | None], str], str]:
    def run(task: str, group: str | None) -> tuple[str, dict[str, str]]:
        status = outcome_of(pattern, TASK_TO_ASSET[task], group)
        outputs = {"status": status, "draft_groups": json.dumps(GROUPS)}
        return ("Failed", {}) if status == "failed" else ("Succeeded", outputs)

    phases, dag = simulate_dag(PARTITION_DAG, run, PARTITION_TEMPLATES)
    out: dict[tuple[str, str | None], str] = {}
    for name, phase in phases.items():
        if "/" in name:
            outer, inner = name.split("/")
            out[(TASK_TO_ASSET[inner], outer[outer.index("(") + 1 : -1])] = phase
        elif name != argo.DRAFT_GROUPS_TASK:
            out[(TASK_TO_ASSET[name], None)] = phase
    fanned = phases.get(argo.DRAFT_GROUPS_TASK)
    for asset in GRAPH.order:  # a fan-out Argo held back holds back every group's steps
        if argo.stage(GRAPH, asset) == "draft_group" and fanned in ("Omitted", "Skipped"):
            out.update({(asset, g): fanned for g in GROUPS})
    return out, dag


# What the local runner calls each Argo phase of a task. A step that stopped short ran (its
# status output says how); one held back after it is Skipped by its `when`.
AGREES = {
    "success": {"Succeeded"},
    "not_due": {"Succeeded", "Skipped"},
    "not_promoted": {"Succeeded", "Skipped"},
    "failed": {"Failed"},
    "blocked": {"Omitted"},
}


def outcome_patterns() -> list[dict[str, str]]:
    steps = [a for a in GRAPH.order if argo.stage(GRAPH, a) != "shared"]
    names = [f"{a}@{g}" if GRAPH.specs[a].shape.name == "draft_group" else a for a in steps for g in GROUPS]
    names = sorted(set(names))
    skippers = [
        f"{a}@{g}" if GRAPH.specs[a].shape.name == "draft_group" else a for a in MAY_SKIP for g in GROUPS
    ]
    patterns: list[dict[str, str]] = [{}]
    patterns += [{n: "failed"} for n in names]
    # Every may-skip step stopping short either way: both runners must hold back the same.
    patterns += [{s: word} for s in skippers for word in STOPPED_SHORT]
    patterns += [{s: "not_due", n: "failed"} for s in skippers for n in names if n != s]
    patterns += [
        {"tracking.scrape": status} for status in ("failed", *STOPPED_SHORT)
    ]  # a window holds nothing back
    rng = random.Random(12)
    for _ in range(60):
        pattern = {n: "failed" for n in rng.sample(names, rng.randint(1, 4))}
        pattern.update(
            {s: rng.choice(STOPPED_SHORT) for s in skippers if rng.random() < 0.5 and s not in pattern}
        )
        patterns.append(pattern)
    return patterns


def test_local_runner_and_compiled_dag_agree_on_every_outcome(slate_plan: Plan, tmp_path: Path) -> None:
    assert MAY_SKIP, "the pipeline declares steps that may skip"
    for number, pattern in enumerate(outcome_patterns()):
        local = local_outcome(pattern, slate_plan, tmp_path / str(number))
        phases, dag_phase = argo_outcome(pattern)
        for node, (status, ran_locally) in local.items():
            phase = phases.get(node)
            assert phase in AGREES[status], (pattern, node, status, phase)
            # A task Argo runs, the local runner runs; one it holds back, the runner holds back.
            assert (phase in ("Succeeded", "Failed")) == ran_locally, (pattern, node)
        failed_locally = any(status == "failed" for status, _ in local.values())
        assert (dag_phase == "Failed") == failed_locally, (pattern, dag_phase)


def test_a_daily_run_before_box_scores_settle_is_green_with_labels_not_due(
    slate_plan: Plan, tmp_path: Path
) -> None:
    pattern = {"labels.boxscores": "not_due"}
    phases, dag_phase = argo_outcome(pattern)
    assert dag_phase == "Succeeded"
    downstream = GRAPH.downstream("labels.boxscores")
    assert downstream and all(phases[(a, None)] == "Skipped" for a in downstream), phases
    local = local_outcome(pattern, slate_plan, tmp_path)
    assert local[("labels.boxscores", None)] == ("not_due", True)
    assert all(local[(a, None)] == ("not_due", False) for a in downstream)
    assert all(p == "Succeeded" for (a, _), p in phases.items() if a not in downstream)


def test_a_late_backfill_not_promoted_is_green_and_holds_nothing_back(
    slate_plan: Plan, tmp_path: Path
) -> None:
    """A run with an older as-of than the current one: promote leaves the pointer, says
    not_promoted, and the slate's fan-in still runs, on both runners."""
    pattern = {"promote@g1": "not_promoted"}
    phases, dag_phase = argo_outcome(pattern)
    local = local_outcome(pattern, slate_plan, tmp_path)
    assert dag_phase == "Succeeded" and all(p == "Succeeded" for p in phases.values()), phases
    assert local[("promote", "g1")] == ("not_promoted", True)
    assert local[("promote", "g2")][0] == "success"
    assert {s for (a, g), (s, _) in local.items() if (a, g) != ("promote", "g1")} == {"success"}


def test_one_draft_group_failing_holds_back_only_its_own_steps_and_the_slates_fan_in(
    slate_plan: Plan, tmp_path: Path
) -> None:
    pattern = {"ownership.score@g1": "failed"}
    phases, dag_phase = argo_outcome(pattern)
    local = local_outcome(pattern, slate_plan, tmp_path)
    assert dag_phase == "Failed"
    assert (
        phases[("finalize.unified", "g1")] == "Omitted" and phases[("finalize.unified", "g2")] == "Succeeded"
    )
    assert local[("finalize.unified", "g1")][0] == "blocked" and local[("promote", "g2")][0] == "success"
    assert phases[("accuracy", None)] == "Omitted" and local[("accuracy", None)][0] == "blocked"


def test_bare_depends_alone_would_run_steps_after_a_skip() -> None:
    """Without the `when` rule Argo treats a skipped step as Succeeded and runs its downstream
    (the real cluster's red evening): the simulation must see that."""
    stripped = {
        **PARTITION_DAG,
        "dag": {
            "tasks": [{k: v for k, v in t.items() if k != "when"} for t in PARTITION_DAG["dag"]["tasks"]]
        },
    }
    phases, _ = simulate_dag(
        stripped,
        lambda t, g: (
            "Succeeded",
            {"status": "not_due" if t == "labels-boxscores" else "success", "draft_groups": "[]"},
        ),
        PARTITION_TEMPLATES,
    )
    assert phases["labels-minutes"] == "Succeeded"


def test_fail_fast_would_stop_independent_branches() -> None:
    """Argo's default failFast stops the partition's other branches on the first failure,
    which the local runner does not: the compiled DAG turns it off."""
    assert PARTITION_DAG["dag"]["failFast"] is False
    eager = {**PARTITION_DAG, "dag": {**PARTITION_DAG["dag"], "failFast": True}}
    phases, _ = simulate_dag(
        eager,
        lambda t, g: (
            ("Failed", {})
            if t == "ingest-injuries"
            else ("Succeeded", {"status": "success", "draft_groups": "[]"})
        ),
        PARTITION_TEMPLATES,
    )
    assert "NotRun" in phases.values()


def test_a_when_on_a_skipped_tasks_output_is_unresolved() -> None:
    """Skipped tasks have no outputs: a `when` may only read steps that always run."""
    template = {
        "dag": {
            "tasks": [
                {"name": "a"},
                {"name": "b", "depends": "a", "when": "'{{tasks.a.outputs.parameters.status}}' == 'success'"},
                {"name": "c", "depends": "b", "when": "'{{tasks.b.outputs.parameters.status}}' == 'success'"},
            ]
        }
    }
    with pytest.raises(Unresolved):
        simulate_dag(template, lambda t, g: ("Succeeded", {"status": "not_due"}))


def test_every_when_reads_an_ancestor_that_always_runs() -> None:
    for task in PARTITION_DAG["dag"]["tasks"]:
        if task["name"] == argo.DRAFT_GROUPS_TASK:
            continue
        asset = TASK_TO_ASSET[task["name"]]
        for source in re.findall(r"tasks\.([a-z0-9-]+)\.outputs", task.get("when", "")):
            assert TASK_TO_ASSET[source] in GRAPH.hard_upstream(asset), (asset, source)
            assert not GRAPH.skip_sources(TASK_TO_ASSET[source]), f"{source} may itself be skipped"


def test_the_draft_group_fan_out_is_wired_as_with_param_expects() -> None:
    """`dk.salaries` outputs a JSON list of group names (`valueFrom.path`, where the step CLI
    writes it; tests/e2e/test_partitions.py checks the file), the fan-out task iterates it, and
    every task of the nested DAG reads its item."""
    partition = argo.to_dict(argo.partition_template(GRAPH, CONFIG))
    templates = {t["name"]: t for t in partition["spec"]["templates"]}
    source = templates[argo.template_name("dk.salaries")]
    [listed] = [p for p in source["outputs"]["parameters"] if p["name"] == "draft_groups"]
    assert listed["valueFrom"] == {"path": f"{argo.OUTPUTS_DIR}/draft_groups.json", "default": "[]"}
    assert f"--outputs-dir {argo.OUTPUTS_DIR}" in " ".join(source["container"]["command"])
    fan_out = next(t for t in PARTITION_DAG["dag"]["tasks"] if t["name"] == argo.DRAFT_GROUPS_TASK)
    assert fan_out["withParam"] == "{{tasks.dk-salaries.outputs.parameters.draft_groups}}"
    assert "dk-salaries" in fan_out["depends"].split(" && ")
    assert {"name": "draft_group", "value": "{{item}}"} in fan_out["arguments"]["parameters"]
    nested = templates[fan_out["template"]]
    assert {p["name"] for p in nested["inputs"]["parameters"]} >= {"draft_group"}
    for task in nested["dag"]["tasks"]:
        step = templates[task["template"]]
        assert {"name": "draft_group", "value": "{{inputs.parameters.draft_group}}"} in task["arguments"][
            "parameters"
        ]
        assert "--draft-group-id" in step["container"]["command"]
        assert GRAPH.specs[TASK_TO_ASSET[task["name"]]].shape.name == "draft_group"
    # Each fan-in task waits for the whole fan-out.
    for task in PARTITION_DAG["dag"]["tasks"]:
        if task["name"] in ("accuracy", "script-dk-export"):
            assert argo.DRAFT_GROUPS_TASK in task["depends"].split(" && ")


def test_a_month_task_runs_the_months_partition_in_every_slate() -> None:
    task = next(t for t in PARTITION_DAG["dag"]["tasks"] if t["name"] == "ingest-schedule")
    args = {p["name"]: p["value"] for p in task["arguments"]["parameters"]}
    assert args["month_run_id"] == "{{inputs.parameters.month_run_id}}" and "run_id" not in args
    partition = argo.to_dict(argo.partition_template(GRAPH, CONFIG))
    step = next(t for t in partition["spec"]["templates"] if t["name"] == "ingest-schedule")
    command = " ".join(step["container"]["command"])
    assert "--month {{inputs.parameters.month}} --run-id {{inputs.parameters.month_run_id}}" in command
    assert "--game-date" not in command


def test_every_step_has_its_declared_deadline_on_a_leaf_template() -> None:
    """A template's activeDeadlineSeconds becomes its pod's (workflow/controller/workflowpod.go)
    and is valid on leaf templates only (workflow/validate/validate.go `validateNonLeaf`), so
    every step's timeout is on its container template and on nothing else. A pack (a
    containerSet, also a leaf) has a deadline of its own (tests/integration/test_argo_packed.py)."""
    templates = library()
    seen = {}
    for obj in templates.values():
        for template in obj["spec"]["templates"]:
            if "activeDeadlineSeconds" in template:
                leaf = ("container", "script", "resource", "containerSet")
                assert any(kind in template for kind in leaf), template["name"]
                if "containerSet" not in template:
                    seen[template["name"]] = int(template["activeDeadlineSeconds"])
    expected = {argo.template_name(a): GRAPH.specs[a].timeout_s for a in GRAPH.order}
    assert seen == expected


def test_no_resume_recomputes_on_argo_too() -> None:
    """`pipeline submit --no-resume` reaches every step as `--force` (a new attempt), a resumed
    range and the daily run as `--no-force`: the flag is the last argument of every step."""
    steps = {argo.template_name(a) for a in GRAPH.order}
    commands = [
        t["container"]["command"]
        for o in library().values()
        for t in o["spec"]["templates"]
        if t["name"] in steps
    ]
    assert len(commands) == len(steps)
    assert all(c[-1] == "{{workflow.parameters.rerun}}" for c in commands)
    items = [sample_item()]
    for resume, flag in ((True, "--no-force"), (False, "--force")):
        wf = argo.to_dict(
            argo.range_workflow(items, correlation_id="c", store_url="s3://b", cfg=CONFIG, resume=resume)
        )
        assert {"name": "rerun", "value": flag} in wf["spec"]["arguments"]["parameters"]
    cron = by_kind(chart_objects(), "CronWorkflow")
    [daily] = cron.values()
    assert {"name": "rerun", "value": "--no-force"} in daily["spec"]["workflowSpec"]["arguments"][
        "parameters"
    ]
