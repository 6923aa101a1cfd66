"""Strict validation of Argo objects against the v4.1.2 JSON schema and CRDs, and checks that
every reference inside a set of rendered objects resolves.

"Strict" as `kubectl apply --validate=strict`: any field the schema does not declare is an
error. Both schemas leave that open, so every object schema that lists `properties` (and does
not preserve unknown fields) is closed with `additionalProperties: false` here.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[1]
KIND_TO_CRD = {
    "Workflow": "argoproj.io_workflows.yaml",
    "WorkflowTemplate": "argoproj.io_workflowtemplates.yaml",
    "CronWorkflow": "argoproj.io_cronworkflows.yaml",
}


# Argo's own v4.1.2 schemas, CRDs and manifests: `../shared/argo-v4.1.2` beside the clone (CI
# always has it). The repository keeps no copy of Argo's files.
ARGO = REPO.parent / "shared" / "argo-v4.1.2"


def _read(name: str) -> str:
    path = ARGO / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the tests read Argo v4.1.2's files from ../shared")
    return path.read_text()


def close(node: Any) -> Any:
    """Forbid undeclared fields everywhere the schema declares fields."""
    if isinstance(node, dict):
        node = {k: close(v) for k, v in node.items()}
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [close(v) for v in node]
    return node


@functools.cache
def _json_schema() -> dict[str, Any]:
    return close(json.loads(_read("schema.json")))


@functools.cache
def _crd_schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load(_read(f"crds/{KIND_TO_CRD[kind]}"))
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return close(version["schema"]["openAPIV3Schema"])


def strict_errors(obj: dict[str, Any]) -> list[str]:
    """Every violation of the JSON schema and of the CRD schema, as readable lines."""
    kind = obj.get("kind")
    if kind not in KIND_TO_CRD:  # a core Kubernetes object: its own schema, strictly
        import kubernetes_validate

        try:
            kubernetes_validate.validate(obj, "1.33", strict=True)
        except kubernetes_validate.ValidationError as exc:
            return [f"kubernetes: {exc.message}"]
        return []
    schema = _json_schema()
    root = {
        "$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}",
        "definitions": schema["definitions"],
    }
    errors = [
        f"schema.json: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(root).iter_errors(obj)
    ]
    errors += [
        f"CRD: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(_crd_schema(kind)).iter_errors(obj)
    ]
    return errors


# ---- references -------------------------------------------------------------------------
_PARAM = re.compile(r"\{\{\s*(inputs|workflow)\.parameters\.([A-Za-z0-9_-]+)\s*\}\}")
_STEP_OUT = re.compile(
    r"\{\{\s*(steps|tasks)\.([A-Za-z0-9_-]+)\.outputs\.parameters\.([A-Za-z0-9_-]+)\s*\}\}"
)
_ITEM = re.compile(r"\{\{\s*item(\.[A-Za-z0-9_]+)?\s*\}\}")


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["workflowSpec"] if obj["kind"] == "CronWorkflow" else obj["spec"]


def _inputs(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in template.get("inputs", {}).get("parameters", [])}


def _outputs(template: dict[str, Any]) -> set[str]:
    return {p["name"] for p in template.get("outputs", {}).get("parameters", [])}


def reference_errors(
    objects: list[dict[str, Any]], *, limits_keys: set[str], service_accounts: set[str]
) -> list[str]:
    """Every template, templateRef, dependency, parameter, semaphore key and account resolves."""
    library = {o["metadata"]["name"]: o for o in objects if o["kind"] == "WorkflowTemplate"}
    errors: list[str] = []

    def find(obj: dict[str, Any], call: dict[str, Any], where: str) -> dict[str, Any] | None:
        if "templateRef" in call:
            ref = call["templateRef"]
            owner = library.get(ref["name"])
            if owner is None:
                errors.append(f"{where}: templateRef to unknown WorkflowTemplate {ref['name']!r}")
                return None
            obj, name = owner, ref["template"]
        else:
            name = call.get("template")
        found = {t["name"]: t for t in _spec(obj)["templates"]}.get(name)
        if found is None:
            errors.append(f"{where}: unknown template {name!r}")
        return found

    def check_call(obj: dict[str, Any], call: dict[str, Any], where: str) -> None:
        target = find(obj, call, where)
        if target is None:
            return
        given = {p["name"] for p in call.get("arguments", {}).get("parameters", [])}
        needed = {n for n, p in _inputs(target).items() if "value" not in p and "default" not in p}
        if needed - given:
            errors.append(f"{where}: does not pass inputs {sorted(needed - given)} of {target['name']}")
        if given - set(_inputs(target)):
            errors.append(f"{where}: passes unknown inputs {sorted(given - set(_inputs(target)))}")
        for text in _strings(call.get("arguments", {})):
            if _ITEM.search(text) and not (call.get("withParam") or call.get("withItems")):
                errors.append(f"{where}: uses {{{{item}}}} without withParam/withItems")

    for obj in objects:
        if obj["kind"] not in ("Workflow", "WorkflowTemplate", "CronWorkflow"):
            continue
        spec = _spec(obj)
        name = obj["metadata"].get("name") or obj["metadata"].get("generateName")
        templates = {t["name"]: t for t in spec["templates"]}
        workflow_params = {p["name"] for p in spec.get("arguments", {}).get("parameters", [])}
        for key in ("entrypoint", "onExit"):
            if key in spec and spec[key] not in templates:
                errors.append(f"{name}: {key} {spec[key]!r} is not a template")
        if spec.get("serviceAccountName") and spec["serviceAccountName"] not in service_accounts:
            errors.append(f"{name}: service account {spec['serviceAccountName']!r} is not defined in k8s/")
        for template in spec["templates"]:
            where = f"{name}/{template['name']}"
            inputs = set(_inputs(template))
            for kind, param in _PARAM.findall(" ".join(_strings(template))):
                if kind == "inputs" and param not in inputs:
                    errors.append(f"{where}: refers to undeclared input {param!r}")
                if kind == "workflow" and obj["kind"] != "WorkflowTemplate" and param not in workflow_params:
                    errors.append(f"{where}: refers to undeclared workflow parameter {param!r}")
            for sem in template.get("synchronization", {}).get("semaphores", []):
                key = sem["configMapKeyRef"]["key"]
                if key not in limits_keys:
                    errors.append(f"{where}: semaphore key {key!r} is not in the limits ConfigMap")
            if "dag" in template:
                tasks = {t["name"]: t for t in template["dag"]["tasks"]}
                for task in tasks.values():
                    check_call(obj, task, f"{where}/{task['name']}")
                    for dep in re.findall(
                        r"[A-Za-z0-9-]+",
                        re.sub(
                            r"\.(Succeeded|Failed|Errored|Skipped|Omitted|Daemoned)\b",
                            "",
                            task.get("depends", ""),
                        ),
                    ):
                        if dep not in tasks:
                            errors.append(f"{where}/{task['name']}: depends on unknown task {dep!r}")
            for group in template.get("steps", []):
                steps_seen = {s["name"]: s for g in template["steps"] for s in g}
                for step in group:
                    check_call(obj, step, f"{where}/{step['name']}")
                    for _, ref, out in _STEP_OUT.findall(" ".join(_strings(step.get("arguments", {})))):
                        source = steps_seen.get(ref)
                        target = find(obj, source, f"{where}/{step['name']}") if source else None
                        if target is None or out not in _outputs(target):
                            errors.append(f"{where}/{step['name']}: output {ref}.{out} does not exist")
            if "containerSet" in template:  # its containers' dependencies, names and outputs
                from tests.argo_rules import container_set_errors

                errors += [f"{where}: {e}" for e in container_set_errors(template)]
            if "resource" in template:
                child = yaml.safe_load(template["resource"]["manifest"])
                ref = child["spec"].get("workflowTemplateRef", {}).get("name")
                if ref not in library:
                    errors.append(f"{where}: child workflow references unknown WorkflowTemplate {ref!r}")
                entry = child["spec"].get("entrypoint")
                if (
                    ref in library
                    and entry
                    and entry not in {t["name"] for t in _spec(library[ref])["templates"]}
                ):
                    errors.append(
                        f"{where}: child workflow's entrypoint {entry!r} is not a template of {ref}"
                    )
                errors += [f"{where} child: {e}" for e in strict_errors(copy.deepcopy(child))]
    return errors
