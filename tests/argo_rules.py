"""Rules Argo's controller applies, read from its v4.1.2 source (docs/argo-rules.md), as
functions over compiled objects, so the tests can hold every object the project ships or
submits to them without a cluster.

- `volume_errors`: a container mounts only volumes of the spec that runs it.
- `simulate_dag`: which tasks of a DAG run, are Skipped or Omitted, for given step outcomes,
  under `depends` and `when`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import yaml

Obj = dict[str, Any]
POD_KINDS = ("container", "script", "containerSet", "resource")


def exec_spec(obj: Obj, library: Mapping[str, Obj]) -> Obj:
    """The spec a workflow runs with. A CronWorkflow runs its `workflowSpec`. With
    `workflowTemplateRef`, the template's spec is joined under the workflow's own fields
    (workflow/util/merge.go JoinWorkflowSpec; the controller's setExecWorkflow); a template
    reached by `templateRef` contributes nothing to it."""
    spec = copy.deepcopy(obj["spec"]["workflowSpec"] if obj["kind"] == "CronWorkflow" else obj["spec"])
    ref = spec.get("workflowTemplateRef")
    if ref:
        base = copy.deepcopy(library[ref["name"]]["spec"])
        merged = {**base, **{k: v for k, v in spec.items() if k != "workflowTemplateRef"}}
        names = {v["name"] for v in spec.get("volumes", [])}
        merged["volumes"] = spec.get("volumes", []) + [
            v for v in base.get("volumes", []) if v["name"] not in names
        ]
        spec = merged
    return spec


def reachable_templates(obj: Obj, library: Mapping[str, Obj]) -> list[tuple[str, Obj, Obj]]:
    """(where, owner, template) for every template a run of `obj` can reach, from its
    entrypoint and exit handler, following `template:` inside the owner and `templateRef`
    across WorkflowTemplates."""
    spec = exec_spec(obj, library)
    top_owner = {"kind": "Workflow", "metadata": obj["metadata"], "spec": spec}
    found: list[tuple[str, Obj, Obj]] = []
    seen: set[tuple[str, str]] = set()

    def visit(owner: Obj, name: str, where: str) -> None:
        key = (owner["metadata"].get("name") or owner["metadata"].get("generateName", ""), name)
        if key in seen:
            return
        seen.add(key)
        templates = {t["name"]: t for t in owner["spec"]["templates"]}
        template = templates[name]
        found.append((where, owner, template))
        calls = [t for t in template.get("dag", {}).get("tasks", [])]
        calls += [s for group in template.get("steps", []) for s in group]
        for call in calls:
            if "templateRef" in call:
                ref = call["templateRef"]
                visit(library[ref["name"]], ref["template"], f"{where}/{call['name']}")
            else:
                visit(owner, call["template"], f"{where}/{call['name']}")

    for key in ("entrypoint", "onExit"):
        if spec.get(key):
            visit(
                top_owner, spec[key], f"{obj['metadata'].get('name') or obj['metadata'].get('generateName')}"
            )
    return found


def child_workflows(obj: Obj, library: Mapping[str, Obj]) -> list[Obj]:
    """Workflows that `resource` templates reachable from `obj` create."""
    children = []
    for _, _, template in reachable_templates(obj, library):
        if "resource" in template and template["resource"].get("action") == "create":
            child = yaml.safe_load(template["resource"]["manifest"])
            if child.get("kind") == "Workflow":
                children.append(child)
    return children


def volume_errors(obj: Obj, library: Mapping[str, Obj]) -> list[str]:
    """Each mount must name a volume of the running workflow's spec; otherwise the controller
    fails the node with "volume '<name>' not found in workflow spec" (workflowpod.go). Child
    workflows created by `resource` templates are checked as workflows of their own."""
    declared = {v["name"] for v in exec_spec(obj, library).get("volumes", [])}
    errors = []
    for where, _, template in reachable_templates(obj, library):
        containers = [template["container"]] if "container" in template else []
        containers += template.get("containerSet", {}).get("containers", [])
        containers += [template["script"]] if "script" in template else []
        for container in containers:
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in declared:
                    errors.append(
                        f"{where} ({template['name']}): volume '{mount['name']}' not found in workflow spec"
                    )
    for child in child_workflows(obj, library):
        errors += [f"child of {obj['metadata'].get('name')}: {e}" for e in volume_errors(child, library)]
    return errors


# ---- DAG semantics ------------------------------------------------------------------------
# Phases as Argo names them. A task's outcome, when it runs, comes from the step: Succeeded
# (with its `status` output) or Failed.
_TOKEN = re.compile(r"([A-Za-z0-9-]+)(?:\.(Succeeded|Failed|Errored|Skipped|Omitted|Daemoned))?")
_OUTPUT = re.compile(r"\{\{tasks\.([A-Za-z0-9-]+)\.outputs\.parameters\.([A-Za-z0-9_-]+)\}\}")


class Unresolved(Exception):
    """A `when` names an output Argo cannot resolve; the controller errors the workflow."""


def _depends_true(expression: str, phases: Mapping[str, str]) -> bool:
    """`depends` (workflow/controller/dag.go): a bare name is satisfied by Succeeded, Skipped
    or Daemoned; `X.Phase` by that phase; `&&`, `||`, `!` and parentheses combine them."""

    def atom(match: re.Match[str]) -> str:
        name, phase = match.group(1), match.group(2)
        got = phases[name]
        if phase is None:
            return str(got in ("Succeeded", "Skipped", "Daemoned"))
        return str(got == phase)

    python = _TOKEN.sub(atom, expression).replace("&&", " and ").replace("||", " or ").replace("!", " not ")
    return bool(eval(python, {"__builtins__": {}}, {}))  # only True/False/and/or/not remain


def _when_true(expression: str, outputs: Mapping[str, Mapping[str, str]]) -> bool:
    """`when`: task outputs substituted first (only tasks that ran have outputs), then the
    expression is evaluated; this handles the `'a' != 'b'` and `&&` forms the project uses."""

    def output(match: re.Match[str]) -> str:
        task, name = match.group(1), match.group(2)
        if task not in outputs or name not in outputs[task]:
            raise Unresolved(match.group(0))
        return outputs[task][name]

    text = _OUTPUT.sub(output, expression)
    clauses = [c.strip() for c in text.split("&&")]
    result = True
    for clause in clauses:
        m = re.fullmatch(r"'([^']*)'\s*(==|!=)\s*'([^']*)'", clause)
        if m is None:
            raise ValueError(f"unsupported when clause {clause!r}")
        left, op, right = m.groups()
        result = result and ((left == right) if op == "==" else (left != right))
    return result


def simulate_dag(
    template: Obj,
    outcome: Callable[[str, str | None], tuple[str, dict[str, str]]],
    templates: Mapping[str, Obj] | None = None,
    item: str | None = None,
) -> tuple[dict[str, str], str]:
    """Phase of every task, and of the DAG, when each task that runs ends as
    `outcome(task, item)` says: ("Succeeded", outputs) or ("Failed", {}). Tasks are listed in
    dependency order.

    A task whose `depends` is false is Omitted; else a false `when` makes it Skipped; else it
    runs. A task with `withParam` over a task's output runs its DAG template once per item
    (phases named `task(item)/inner`); it fails when any item's DAG fails, and an empty list
    succeeds. With `failFast` (Argo's default) no task starts after a failure, so the
    simulation assumes the worst order: tasks left after the first failure do not run at all
    ("NotRun"). The DAG fails when any task failed (none of ours handle a failure with
    `.Failed`)."""
    phases: dict[str, str] = {}
    outputs: dict[str, dict[str, str]] = {}
    fail_fast = template["dag"].get("failFast", True)
    for task in template["dag"]["tasks"]:
        name = task["name"]
        if fail_fast and "Failed" in phases.values():
            phases[name] = "NotRun"
            continue
        if task.get("depends") and not _depends_true(task["depends"], phases):
            phases[name] = "Omitted"
            continue
        if task.get("when") and not _when_true(task["when"], outputs):
            phases[name] = "Skipped"
            continue
        if "withParam" in task:
            listed = _OUTPUT.fullmatch(task["withParam"])
            if listed is None or listed.group(1) not in outputs:
                raise Unresolved(task["withParam"])
            items = json.loads(outputs[listed.group(1)][listed.group(2)])
            nested = (templates or {})[task["template"]]
            failed = False
            for each in items:
                inner, inner_phase = simulate_dag(nested, outcome, templates, each)
                phases.update({f"{name}({each})/{k}": v for k, v in inner.items()})
                failed = failed or inner_phase == "Failed"
            phases[name] = "Failed" if failed else "Succeeded"
            continue
        phases[name], produced = outcome(name, item)
        if phases[name] == "Succeeded":
            outputs[name] = produced
    dag_phase = "Failed" if "Failed" in phases.values() else "Succeeded"
    return phases, dag_phase


# ---- sample objects -------------------------------------------------------------------------
def sample_item(
    day: str = "2025-01-06", as_of: str = "2025-01-07T00:30:00Z", worlds: int = 1000
) -> dict[str, str]:
    """One slate as the chunks take it, made by the code that makes them (argo.slate_items)."""
    from steps.runtime.partition import Partition, season_of
    from workflows import argo
    from workflows.plan import run_id_for

    partition = Partition.build(game_date=day, run_as_of_ts=as_of, run_id="x", profile="base", worlds=worlds)
    partition = partition.model_copy(
        update={
            "run_id": run_id_for(partition.run_as_of_ts, "base", worlds),
            "season": season_of(partition.game_date),
        }
    )
    return argo.slate_items([partition])[0]


def sample_shared() -> dict[str, list[dict[str, str]]]:
    """A shared stage of one window slate (argo.shared_items)."""
    from workflows import argo
    from workflows.plan import settled_partition

    day = date(2025, 1, 5)
    return argo.shared_items([("tracking.scrape", settled_partition(day))])


def submitted_objects(objects: list[Obj], *, slates: int = 3) -> list[Obj]:
    """What runs on a cluster, from the chart's objects: the CronWorkflow, each
    WorkflowTemplate submitted on its own (`argo submit --from workflowtemplate/...`), and the
    range Workflow `pipeline submit` builds."""
    from workflows import argo
    from workflows.config import load_config
    from workflows.graph import pipeline_graph

    runs: list[Obj] = [o for o in objects if o["kind"] == "CronWorkflow"]
    runs += [
        {
            "kind": "Workflow",
            "metadata": {"generateName": f"{name}-"},
            "spec": {"workflowTemplateRef": {"name": name}},
        }
        for name in (o["metadata"]["name"] for o in objects if o["kind"] == "WorkflowTemplate")
    ]
    workflow = argo.range_workflow(
        [sample_item()] * slates,
        correlation_id="bf-sample",
        store_url="s3://projections",
        cfg=load_config(),
        graph=pipeline_graph(),
        shared=sample_shared(),
    )
    return [*runs, argo.to_dict(workflow)]
