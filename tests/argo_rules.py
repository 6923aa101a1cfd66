"""Rules Argo's controller applies, read from its v4.1.2 source (docs/argo-rules.md), as
functions over compiled objects, so the tests can hold every object the project ships or
submits to them without a cluster.

- `volume_errors`: a container mounts only volumes of the spec that runs it.
- `global_parameter_errors`: a `{{workflow.parameters.x}}` names an argument of the spec that
  runs it.
- `simulate_dag`: which tasks of a DAG run, are Skipped or Omitted, for given step outcomes,
  under `depends` and `when`; a containerSet task runs its containers as the emissary does.
- `container_set_errors`: a containerSet template as Argo's validation and the pod it makes
  require it.
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
        merged["volumes"] = _by_name(spec.get("volumes", []), base.get("volumes", []))
        given = spec.get("arguments", {}).get("parameters", [])
        merged["arguments"] = {"parameters": _by_name(given, base.get("arguments", {}).get("parameters", []))}
        spec = merged
    return spec


def _by_name(first: list[Obj], then: list[Obj]) -> list[Obj]:
    """A name-keyed list merged as JoinWorkflowSpec merges it: the workflow's entry wins."""
    names = {v["name"] for v in first}
    return first + [v for v in then if v["name"] not in names]


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
        # A container set's own mounts reach each of its containers (ContainerSetTemplate
        # GetContainers, container_set_template_types.go), so they are looked up the same way.
        containers += [template["containerSet"]] if "containerSet" in template else []
        for container in containers:
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in declared:
                    errors.append(
                        f"{where} ({template['name']}): volume '{mount['name']}' not found in workflow spec"
                    )
    for child in child_workflows(obj, library):
        errors += [f"child of {obj['metadata'].get('name')}: {e}" for e in volume_errors(child, library)]
    return errors


_GLOBAL = re.compile(r"\{\{\s*workflow\.parameters\.([A-Za-z0-9_-]+)\s*\}\}")


def global_parameter_errors(obj: Obj, library: Mapping[str, Obj]) -> list[str]:
    """Every `{{workflow.parameters.x}}` a run of `obj` can reach must name an argument of the
    spec that runs it. The controller fills the global scope from the execution spec's
    arguments only (operator.go setExecWorkflow -> setGlobalParameters(execWf.Spec.Arguments);
    for a workflowTemplateRef the child's arguments joined over the template's) and substitutes
    it into every template it runs (executeTemplate -> common.ProcessArgs), so a template reached
    by `templateRef` reads the running workflow's parameters, never its own WorkflowTemplate's;
    an unknown one fails validation. A resource template's manifest is substituted with the
    creating workflow's globals (executeResource), so it counts as the creator's. Child
    workflows are checked as workflows of their own."""
    spec = exec_spec(obj, library)
    declared = {p["name"] for p in spec.get("arguments", {}).get("parameters", [])}
    errors = []
    for where, _, template in reachable_templates(obj, library):
        for name in sorted(set(_GLOBAL.findall(json.dumps(template)))):
            if name not in declared:
                errors.append(f"{where} ({template['name']}): workflow.parameters.{name} is not an argument")
    for child in child_workflows(obj, library):
        errors += [
            f"child of {obj['metadata'].get('name')}: {e}" for e in global_parameter_errors(child, library)
        ]
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


Outcome = Callable[[str, str | None], tuple[str, dict[str, str]]]


def simulate_dag(
    template: Obj,
    outcome: Outcome,
    templates: Mapping[str, Obj] | None = None,
    item: str | None = None,
) -> tuple[dict[str, str], str]:
    """Phase of every task, and of the DAG, when each task that runs ends as
    `outcome(task, item)` says: ("Succeeded", outputs) or ("Failed", {}). Tasks are listed in
    dependency order.

    A task whose `depends` is false is Omitted; else a false `when` makes it Skipped; else it
    runs. A task with `withParam` over a task's output runs its template once per item
    (phases named `task(item)/inner`); it fails when any item fails, and an empty list
    succeeds. A task whose template is a container set runs it (`simulate_container_set`;
    phases `task/container`). With `failFast` (Argo's default) no task starts after a
    failure, so the simulation assumes the worst order: tasks left after the first failure do
    not run at all ("NotRun"). The DAG fails when any task failed (none of ours handle a
    failure with `.Failed`)."""
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
        callee = (templates or {}).get(task.get("template", ""))
        if "withParam" in task:
            phases[name] = _fan_out(task, callee, outcome, templates, outputs, phases)
            continue
        if callee is not None and "containerSet" in callee:
            inner, phases[name], produced = simulate_container_set(callee, outcome, item)
            phases.update({f"{name}/{k}": v for k, v in inner.items()})
        else:
            phases[name], produced = outcome(name, item)
        if phases[name] == "Succeeded":
            outputs[name] = produced
    dag_phase = "Failed" if "Failed" in phases.values() else "Succeeded"
    return phases, dag_phase


def _fan_out(
    task: Obj,
    callee: Obj | None,
    outcome: Outcome,
    templates: Mapping[str, Obj] | None,
    outputs: Mapping[str, Mapping[str, str]],
    phases: dict[str, str],
) -> str:
    """Run a withParam task's template (a DAG or a container set) once per item of the list a
    task output; record the items' phases and return the task's."""
    listed = _OUTPUT.fullmatch(task["withParam"])
    if listed is None or listed.group(1) not in outputs or callee is None:
        raise Unresolved(task["withParam"])
    failed = False
    for each in json.loads(outputs[listed.group(1)][listed.group(2)]):
        if "containerSet" in callee:
            inner, inner_phase, _ = simulate_container_set(callee, outcome, each)
        else:
            inner, inner_phase = simulate_dag(callee, outcome, templates, each)
        phases.update({f"{task['name']}({each})/{k}": v for k, v in inner.items()})
        failed = failed or inner_phase == "Failed"
    return "Failed" if failed else "Succeeded"


def simulate_container_set(
    template: Obj, outcome: Outcome, item: str | None = None
) -> tuple[dict[str, str], str, dict[str, str]]:
    """A container set's pod: container phases, the pod node's phase and its outputs.

    Every container starts at once; the emissary runs a container's command only once each of
    its `dependencies` wrote exit code 0, and otherwise exits 64 without running it
    (cmd/argoexec/commands/emissary.go waitForDependencies), which the controller shows as an
    Error node (operator.go assessNodeStatus: exit 64 is the emissary's own failure). `main`
    here only runs `true`. The pod fails when any container did not exit 0. Output parameters
    are read from their files once every container has ended, whatever the exit codes
    (wait.go); a file a container never wrote takes its default."""
    containers = {c["name"]: c for c in template["containerSet"]["containers"]}
    phases: dict[str, str] = {}
    produced: dict[str, dict[str, str]] = {}
    while len(phases) < len(containers):
        ready = [
            n
            for n, c in containers.items()
            if n not in phases and set(c.get("dependencies", [])) <= set(phases)
        ]
        if not ready:
            raise ValueError(f"{template['name']}: the containers' dependencies form a cycle")
        for name in ready:
            if any(phases[d] != "Succeeded" for d in containers[name].get("dependencies", [])):
                phases[name] = "Error"
            elif name == "main":
                phases[name] = "Succeeded"
            else:
                phases[name], produced[name] = outcome(name, item)
    outputs = {}
    for param in template.get("outputs", {}).get("parameters", []):
        container, file = param["valueFrom"]["path"].split("/")[-2:]
        default = param["valueFrom"].get("default", "")
        outputs[param["name"]] = produced.get(container, {}).get(file.split(".")[0], default)
    phase = "Succeeded" if all(p == "Succeeded" for p in phases.values()) else "Failed"
    return phases, phase, outputs


# ---- container sets -------------------------------------------------------------------------
# validate.go isValidWorkflowFieldName, and a pod's container name (a DNS label, at most 63).
_CONTAINER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ARGO_CONTAINERS = ("init", "wait")  # workflowpod.go puts these in every container set's pod
MAX_TEMPLATE_ENV = 128 * 1024  # ARGO_TEMPLATE above this is offloaded to a ConfigMap (§1.4)


def container_set_errors(template: Obj) -> list[str]:
    """What Argo requires of a containerSet template, as one list of readable errors.

    From `ContainerSetTemplate.Validate` (container_set_template_types.go): at least one
    container; names valid and unique; every dependency names a container of the set; no
    dependency cycle; no mount path twice among the set's volumeMounts. From validate.go
    `validateLeaf`: a container named `main` when the template has outputs or input artifacts.
    From the pod that workflowpod.go builds: no container named like Argo's own (`init`,
    `wait`); a container's own mount never repeats a path of the set's (GetContainers appends
    them, and a pod refuses a path mounted twice); output files on a volume the set mounts (the
    wait container reads them through its mirror of the containers' mounts). From the emissary
    (GetRetryStrategy): `retryStrategy.retries` is the number of runs, so at least 1."""
    name = template["name"]
    cs = template["containerSet"]
    containers = cs.get("containers", [])
    names = [c["name"] for c in containers]
    errors = [] if containers else [f"{name}: containers must have at least one container"]
    errors += [
        f"{name}: container name {n!r} is invalid"
        for n in names
        if not _CONTAINER_NAME.match(n) or len(n) > 63
    ]
    errors += [
        f"{name}: container name {n!r} is not unique" for n in sorted(set(names)) if names.count(n) > 1
    ]
    errors += [f"{name}: container {n!r} would clash with Argo's own" for n in names if n in ARGO_CONTAINERS]
    for c in containers:
        errors += [
            f"{name}: containers.{c['name']} dependency {d!r} not defined"
            for d in c.get("dependencies", [])
            if d not in names
        ]
    errors += _cycle_errors(name, {c["name"]: c.get("dependencies", []) for c in containers})
    set_paths = [v["mountPath"] for v in cs.get("volumeMounts", [])]
    errors += [
        f"{name}: volumeMounts path {p!r} already mounted"
        for p in sorted(set(set_paths))
        if set_paths.count(p) > 1
    ]
    for c in containers:
        errors += [
            f"{name}: containers.{c['name']} mounts {v['mountPath']!r}, which the set mounts too"
            for v in c.get("volumeMounts", [])
            if v["mountPath"] in set_paths
        ]
    outputs = template.get("outputs", {})
    if (
        outputs.get("parameters") or outputs.get("artifacts") or template.get("inputs", {}).get("artifacts")
    ) and ("main" not in names):
        errors.append(f'{name}: containers must have a container named "main" for input or output')
    for param in outputs.get("parameters", []):
        path = param.get("valueFrom", {}).get("path", "")
        if path and not any(path.startswith(p.rstrip("/") + "/") for p in set_paths):
            errors.append(f"{name}: output {param['name']} ({path}) is on no volume the set mounts")
    retry = cs.get("retryStrategy")
    if retry is not None and int(retry["retries"]) < 1:
        errors.append(
            f"{name}: retryStrategy.retries {retry['retries']} runs the containers {retry['retries']} times"
        )
    if len(json.dumps(template)) > MAX_TEMPLATE_ENV:
        errors.append(f"{name}: the template is over {MAX_TEMPLATE_ENV} bytes and would be offloaded")
    return errors


def _cycle_errors(name: str, graph: Mapping[str, list[str]]) -> list[str]:
    placed: set[str] = set()
    while len(placed) < len(graph):
        ready = [
            n
            for n, deps in graph.items()
            if n not in placed and set(deps) <= placed | (set(deps) - set(graph))
        ]
        if not ready:
            return [f"{name}: containers dependency cycle among {sorted(set(graph) - placed)}"]
        placed.update(ready)
    return []


# ---- sample objects -------------------------------------------------------------------------
def sample_item(
    day: str = "2025-01-06", as_of: str = "2025-01-07T00:30:00Z", worlds: int = 1000
) -> dict[str, str]:
    """One slate as the chunks take it, made by the code that makes them (argo.slate_items)."""
    from steps.runtime.partition import Partition, season_of
    from workflows.argo import build as argo
    from workflows.dag.plan import run_id_for

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
    from workflows.argo import build as argo
    from workflows.dag.plan import settled_partition

    day = date(2025, 1, 5)
    return argo.shared_items([("tracking.scrape", settled_partition(day))])


def submitted_objects(objects: list[Obj], *, slates: int = 3) -> list[Obj]:
    """What runs on a cluster, from the chart's objects: the CronWorkflow, each
    WorkflowTemplate submitted on its own (`argo submit --from workflowtemplate/...`), and the
    range Workflow `pipeline submit` builds, one pod per step and packed."""
    from workflows.argo import build as argo
    from workflows.dag.config import load_config
    from workflows.dag.graph import pipeline_graph

    runs: list[Obj] = [o for o in objects if o["kind"] == "CronWorkflow"]
    runs += [
        {
            "kind": "Workflow",
            "metadata": {"generateName": f"{name}-"},
            "spec": {"workflowTemplateRef": {"name": name}},
        }
        for name in (o["metadata"]["name"] for o in objects if o["kind"] == "WorkflowTemplate")
    ]
    ranges = [
        argo.range_workflow(
            [sample_item()] * slates,
            correlation_id="bf-sample",
            store_url="s3://projections",
            cfg=load_config(),
            graph=pipeline_graph(),
            shared=sample_shared(),
            packed=packed,
        )
        for packed in (False, True)
    ]
    return [*runs, *(argo.to_dict(w) for w in ranges)]
