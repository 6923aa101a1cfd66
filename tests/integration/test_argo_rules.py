"""Argo's rules (docs/argo-rules.md) held against every object the project ships or submits,
and the local runner held against the compiled DAG: the same steps run, skip or are held back
for every pattern of step outcomes."""

from __future__ import annotations

import random
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from steps.runtime.partition import Partition
from steps.runtime.store import open_store
from tests.argo_rules import Unresolved, simulate_dag, volume_errors
from tests.chart import by_kind, chart_objects
from workflows import argo
from workflows.config import load_config
from workflows.graph import pipeline_graph
from workflows.local import LocalRunner, TaskResult
from workflows.plan import Plan, PlannedPartition, StepPlan

CONFIG = load_config()
GRAPH = pipeline_graph()
ITEM = {
    "game_date": "2025-01-06",
    "run_id": "20250107T003000Z-base-w1000",
    "as_of": "2025-01-07T00:30:00Z",
    "season": "2024",
    "profile": "base",
    "worlds": "1000",
}


def library() -> dict[str, dict[str, Any]]:
    return by_kind(chart_objects(), "WorkflowTemplate")


def submitted_objects() -> list[dict[str, Any]]:
    """What runs on a cluster: the CronWorkflow, each WorkflowTemplate submitted on its own
    (`argo submit --from workflowtemplate/...`), and the range Workflow `pipeline submit` builds."""
    templates = library()
    objects: list[dict[str, Any]] = list(by_kind(chart_objects(), "CronWorkflow").values())
    for name, template in templates.items():
        objects.append(
            {
                "kind": "Workflow",
                "metadata": {"generateName": f"{name}-"},
                "spec": {"workflowTemplateRef": {"name": template["metadata"]["name"]}},
            }
        )
    objects.append(
        argo.to_dict(
            argo.range_workflow(
                [ITEM] * 40, correlation_id="bf-rules", store_url="s3://projections", cfg=CONFIG
            )
        )
    )
    return objects


@pytest.mark.parametrize(
    "obj", submitted_objects(), ids=lambda o: o["metadata"].get("name") or o["metadata"]["generateName"]
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
    rng = argo.to_dict(argo.range_workflow([ITEM], correlation_id="x", store_url="s3://p", cfg=CONFIG))
    del rng["spec"]["volumes"]
    assert any("summarize" in e for e in volume_errors(rng, library()))


# ---- one skip semantics on both runners ----------------------------------------------------
PARTITION_DAG = next(
    t for t in argo.to_dict(argo.partition_template(GRAPH, CONFIG))["spec"]["templates"] if "dag" in t
)
TASK_TO_ASSET = {argo.template_name(a): a for a in GRAPH.order}
MAY_SKIP = [a for a in GRAPH.order if GRAPH.specs[a].may_skip]


class ScriptedRunner(LocalRunner):
    """The local runner's real scheduling, with each step's outcome given instead of run."""

    def __init__(self, outcomes: dict[str, str], tmp: Path) -> None:
        super().__init__(
            open_store(f"file://{tmp}", create=True),
            GRAPH,
            CONFIG,
            correlation_id="conformance",
            mode="subprocess",
        )
        self.outcomes = outcomes

    def run_task(self, asset: str, planned: PlannedPartition) -> TaskResult:
        p = planned.partition
        return TaskResult(p.game_date, p.run_id, asset, self.outcomes.get(asset, "success"), attempts=1)  # type: ignore[arg-type]


def local_outcome(outcomes: dict[str, str], tmp: Path) -> dict[str, tuple[str, bool]]:
    """Per step: its status, and whether the runner ran it (held-back steps have no attempt)."""
    partition = Partition.build(
        game_date=date(2025, 1, 6), run_as_of_ts=ITEM["as_of"], run_id=ITEM["run_id"], season=2024
    )
    planned = PlannedPartition(
        partition=partition,
        first_tip=datetime.fromisoformat("2025-01-07T01:00:00+00:00"),
        steps={a: StepPlan(a, "run", "planned") for a in GRAPH.order},
    )
    results = ScriptedRunner(outcomes, tmp).run(Plan(graph=GRAPH, partitions=[planned]))
    return {r.asset: (r.status, r.attempts > 0) for r in results}


def argo_outcome(outcomes: dict[str, str]) -> tuple[dict[str, str], str]:
    def run(task: str) -> tuple[str, dict[str, str]]:
        status = outcomes.get(TASK_TO_ASSET[task], "success")
        return ("Failed", {}) if status == "failed" else ("Succeeded", {"status": status})

    phases, dag = simulate_dag(PARTITION_DAG, run)
    return {TASK_TO_ASSET[t]: p for t, p in phases.items()}, dag


# What the local runner calls each Argo phase of a task.
AGREES = {
    "success": {"Succeeded"},
    "skipped": {"Succeeded", "Skipped"},  # skipped itself (ran, status=skipped) or after a skip
    "failed": {"Failed"},
    "blocked": {"Omitted"},
}


def outcome_patterns() -> list[dict[str, str]]:
    patterns: list[dict[str, str]] = [{}]
    patterns += [{a: "failed"} for a in GRAPH.order]
    patterns += [{a: "skipped"} for a in MAY_SKIP]
    patterns += [{s: "skipped", a: "failed"} for s in MAY_SKIP for a in GRAPH.order if a != s]
    patterns += [dict.fromkeys(MAY_SKIP, "skipped")]
    rng = random.Random(12)
    for _ in range(60):
        pattern = {a: "failed" for a in rng.sample(GRAPH.order, rng.randint(1, 4))}
        pattern.update({s: "skipped" for s in MAY_SKIP if rng.random() < 0.5 and s not in pattern})
        patterns.append(pattern)
    return patterns


def test_local_runner_and_compiled_dag_agree_on_every_outcome(tmp_path: Path) -> None:
    assert MAY_SKIP, "the pipeline declares steps that may skip"
    for number, pattern in enumerate(outcome_patterns()):
        local = local_outcome(pattern, tmp_path / str(number))
        phases, dag_phase = argo_outcome(pattern)
        for asset in GRAPH.order:
            status, ran_locally = local[asset]
            assert phases[asset] in AGREES[status], (pattern, asset, status, phases[asset])
            # A task Argo runs, the local runner runs; one it holds back, the runner holds back.
            assert (phases[asset] in ("Succeeded", "Failed")) == ran_locally, (pattern, asset)
        failed_locally = any(status == "failed" for status, _ in local.values())
        assert (dag_phase == "Failed") == failed_locally, (pattern, dag_phase)


def test_a_daily_run_before_box_scores_settle_is_green_with_labels_skipped(tmp_path: Path) -> None:
    pattern = {"labels.boxscores": "skipped"}
    phases, dag_phase = argo_outcome(pattern)
    assert dag_phase == "Succeeded"
    downstream = GRAPH.downstream("labels.boxscores")
    assert downstream and all(phases[a] == "Skipped" for a in downstream), phases
    local = local_outcome(pattern, tmp_path)
    assert all(local[a] == ("skipped", False) for a in downstream)
    assert all(phases[a] == "Succeeded" for a in GRAPH.order if a not in downstream)


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
        lambda t: ("Succeeded", {"status": "skipped" if t == "labels-boxscores" else "success"}),
    )
    assert phases["labels-minutes"] == "Succeeded"


def test_fail_fast_would_stop_independent_branches() -> None:
    """Argo's default failFast stops the partition's other branches on the first failure,
    which the local runner does not: the compiled DAG turns it off."""
    assert PARTITION_DAG["dag"]["failFast"] is False
    eager = {**PARTITION_DAG, "dag": {**PARTITION_DAG["dag"], "failFast": True}}
    phases, _ = simulate_dag(
        eager, lambda t: ("Failed", {}) if t == "ingest-injuries" else ("Succeeded", {"status": "success"})
    )
    assert "NotRun" in phases.values()


def test_a_when_on_a_skipped_tasks_output_is_unresolved() -> None:
    """Skipped tasks have no outputs: a `when` may only read steps that always run."""
    template = {
        "dag": {
            "tasks": [
                {"name": "a"},
                {"name": "b", "depends": "a", "when": "'{{tasks.a.outputs.parameters.status}}' != 'skipped'"},
                {"name": "c", "depends": "b", "when": "'{{tasks.b.outputs.parameters.status}}' != 'skipped'"},
            ]
        }
    }
    with pytest.raises(Unresolved):
        simulate_dag(template, lambda t: ("Succeeded", {"status": "skipped"}))


def test_every_when_reads_an_ancestor_that_always_runs() -> None:
    for task in PARTITION_DAG["dag"]["tasks"]:
        asset = TASK_TO_ASSET[task["name"]]
        for source in re.findall(r"tasks\.([a-z0-9-]+)\.outputs", task.get("when", "")):
            assert TASK_TO_ASSET[source] in GRAPH.upstream(asset), (asset, source)
            assert not GRAPH.skip_sources(TASK_TO_ASSET[source]), f"{source} may itself be skipped"
