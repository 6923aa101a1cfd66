"""The Argo side without a cluster: strict validation, references, drift, conformance."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from steps.runtime.manifest import read_manifest
from steps.runtime.partition import PartitionKey
from steps.runtime.store import open_store
from tests.argo_rules import sample_item, sample_shared
from tests.chart import CHART, by_kind, chart_objects, helm_binary
from tests.strict import REPO, reference_errors, strict_errors
from workflows.argo import build as argo
from workflows.argo.render import compact_dump, dump, generated_objects, helmify, render
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph

CONFIG = load_config()
GRAPH = pipeline_graph()
PARTITION = sample_item("2024-11-18", "2024-11-18T23:30:00Z", worlds=200)


def rendered() -> list[dict]:
    """The chart's Argo objects and a range of each mode."""
    objects = list(generated_objects(GRAPH, CONFIG).values())
    for packed in (False, True):
        objects.append(
            argo.to_dict(
                argo.range_workflow(
                    graph=GRAPH,
                    shared=sample_shared(),
                    partitions=[PARTITION] * 70,
                    correlation_id="bf-test",
                    store_url="s3://projections",
                    cfg=CONFIG,
                    packed=packed,
                )
            )
        )
    return objects


def test_committed_yaml_matches_the_code() -> None:
    assert render(REPO, GRAPH, CONFIG, check=True) == [], "run `pipeline render` and commit"


@pytest.mark.parametrize("name", sorted(generated_objects(GRAPH, CONFIG)))
def test_the_charts_compact_yaml_holds_the_same_objects(name: str) -> None:
    """The chart writes small collections and command lines inline: the same objects (the Helm
    test below checks what Helm makes of the chart), every Argo `{{...}}` on one line so helmify
    can escape it, and far fewer lines than block YAML."""
    obj = generated_objects(GRAPH, CONFIG)[name]
    text = compact_dump(obj)
    assert yaml.safe_load(text) == obj
    for line in helmify(obj, CONFIG).splitlines():
        # What is left once Argo's escaped `{{...}}` and Helm's own actions are taken out must
        # hold no template delimiter, or Helm would read an Argo expression as its own.
        rest = re.sub(r"\{\{ .*? \}\}", "", re.sub(r"\{\{`.*?`\}\}", "", line))
        assert "{{" not in rest, line
    if name == "workflowtemplate-partition.yaml":
        assert len(text.splitlines()) * 2 < len(dump(obj).splitlines())


@pytest.mark.parametrize(
    "obj",
    rendered(),
    ids=lambda o: f"{o['kind']}-{o['metadata'].get('name') or o['metadata']['labels'][argo.MODE_LABEL]}",
)
def test_rendered_objects_validate_strictly(obj: dict) -> None:
    assert strict_errors(obj) == []


def test_strict_validation_rejects_unknown_fields() -> None:
    obj = argo.to_dict(argo.cron_workflow(GRAPH, CONFIG))
    obj["spec"]["schedule"] = "0 17 * * *"  # removed in Argo v4
    obj["spec"]["workflowSpec"]["templates"][0]["bogus"] = 1
    errors = strict_errors(obj)
    assert any("schedule" in e for e in errors) and any("bogus" in e for e in errors)


def test_every_reference_resolves() -> None:
    cluster = chart_objects()
    limits = next(
        o for o in cluster if o["kind"] == "ConfigMap" and o["metadata"]["name"] == argo.LIMITS_CONFIGMAP
    )
    accounts = {o["metadata"]["name"] for o in cluster if o["kind"] == "ServiceAccount"}
    assert reference_errors(rendered(), limits_keys=set(limits["data"]), service_accounts=accounts) == []
    # ...and a broken reference is caught.
    broken = rendered()
    broken[0]["spec"]["templates"][0]["dag"]["tasks"][0]["depends"] = "no-such-task"
    assert any(
        "no-such-task" in e
        for e in reference_errors(broken, limits_keys=set(limits["data"]), service_accounts=accounts)
    )


def test_scale_four_seasons_stays_within_argo_limits() -> None:
    items = [dict(PARTITION, game_date=f"d{i:04d}") for i in range(700)]
    wf = argo.to_dict(
        argo.range_workflow(
            items, correlation_id="bf-scale", store_url="s3://projections", cfg=CONFIG, graph=GRAPH
        )
    )
    size = len(yaml.safe_dump(wf))
    assert size < 256 * 1024  # far below etcd's ~1.5 MB object limit
    [dag] = [t["dag"] for t in wf["spec"]["templates"] if "dag" in t]
    chunks = [yaml.safe_load(t["arguments"]["parameters"][0]["value"]) for t in dag["tasks"]]
    assert len(chunks) == -(-700 // CONFIG.argo.chunk_size)
    assert max(map(len, chunks)) <= CONFIG.argo.chunk_size and sum(map(len, chunks)) == 700
    # Node names say which dates a chunk holds, not its JSON (Argo names withParam nodes by item).
    assert all(len(t["name"]) < 64 and "{" not in t["name"] for t in dag["tasks"])
    assert dag["tasks"][0]["name"] == "chunk-001-d0000-to-d0030"
    nodes_per_child = CONFIG.argo.chunk_size * (len(GRAPH.order) + 1) + 2
    assert nodes_per_child < 1000


def _substitute(text: str, values: dict[str, str]) -> str:
    """Argo's substitution of the parameters our templates use."""
    text = _substitute_globals(_substitute_inputs(text, values), values)
    text = text.replace("{{workflow.status}}", values.get("workflow_status", "Running"))
    return text.replace("{{workflow.name}}", "conformance")


def _substitute_inputs(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{inputs.parameters.%s}}" % key, value)  # noqa: UP031
    return text


def _substitute_globals(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{workflow.parameters.%s}}" % key, value)  # noqa: UP031
    return text.replace("{{workflow.name}}", "conformance")


def test_each_container_command_runs_locally(seeded: str, tmp_path: Path) -> None:
    """Run every rendered step container's command, parameters substituted, in DAG order, the
    way the controller would: the shared stage first, then the slate's DAG, and the draft-group
    DAG once per group its `dk.salaries` task output."""
    objects = generated_objects(GRAPH, CONFIG)
    template = objects["workflowtemplate-partition.yaml"]
    containers = {t["name"]: t for t in template["spec"]["templates"] if "container" in t}
    dags = {t["name"]: t["dag"]["tasks"] for t in template["spec"]["templates"] if "dag" in t}
    store = open_store(seeded)
    values = {
        **PARTITION,
        "store": seeded,
        "correlation_id": "conformance",
        "reason": "argo conformance",
        "rerun": "--no-force",
    }
    ran: list[str] = []

    # The range-wide values are the workflow's arguments (docs/argo-rules.md §7.8): only they
    # fill `{{workflow.parameters.*}}`; a step's inputs come from its task's arguments alone.
    workflow = {k: values[k] for k in argo.SHARED_PARAMS}

    def run_task(task: dict, values: dict[str, str]) -> Path:
        spec = containers[task["template"]]
        outputs = tmp_path / f"{task['name']}-{values.get('draft_group', '')}"
        given = {
            p["name"]: _substitute(p["value"], values)
            for p in task.get("arguments", {}).get("parameters", [])
        }
        assert set(given) == {p["name"] for p in spec["inputs"]["parameters"]}, task["name"]
        argv = [
            _substitute_globals(_substitute_inputs(a, given), workflow).replace(
                argo.OUTPUTS_DIR, str(outputs)
            )
            for a in spec["container"]["command"]
        ]
        assert "{{" not in " ".join(argv), argv
        argv[0] = sys.executable if argv[0] == "python" else argv[0]
        result = subprocess.run(
            argv, capture_output=True, text=True, env=dict(os.environ), check=False, timeout=300
        )
        assert result.returncode == 0, f"{task['name']}: {result.stderr}"
        assert (outputs / "status").read_text() == "success", task["name"]
        asset = spec["metadata"]["labels"]["projections/asset"]
        manifest = read_manifest(store, asset, _key(asset, given))
        assert manifest is not None and manifest.status == "success"
        assert manifest.environment.orchestrator_run_id == "conformance"
        assert manifest.reason == "argo conformance"  # `pipeline submit --reason`, in every manifest
        ran.append(asset)
        return outputs

    shared = next(
        t
        for t in generated_objects(GRAPH, CONFIG)["workflowtemplate-range.yaml"]["spec"]["templates"]
        if t["name"] == argo.SHARED_DAG
    )
    for task in shared["dag"]["tasks"]:  # the window slates before this one
        for day in ("2024-11-15", "2024-11-16", "2024-11-17"):
            item = {
                "game_date": day,
                "settled_as_of": f"{day[:8]}{int(day[8:]) + 1:02d}T17:00:00Z",
                "season": "2024",
            }
            args = {
                p["name"]: _substitute(
                    p["value"].replace("{{item.", "{{inputs.parameters."), {**values, **item}
                )
                for p in task["arguments"]["parameters"]
            }
            run_task(
                {
                    "name": task["name"],
                    "template": task["templateRef"]["template"],
                    "arguments": {"parameters": [{"name": k, "value": v} for k, v in args.items()]},
                },
                {},
            )
    for task in dags["partition"]:  # rendered in dependency order
        if task["name"] != argo.DRAFT_GROUPS_TASK:
            out = run_task(task, values)
            if task["template"] == argo.template_name("dk.salaries"):
                groups = json.loads((out / "draft_groups.json").read_text())
            continue
        assert groups, "dk.salaries lists the slate's draft groups"
        for group in groups:
            for inner in dags[argo.DRAFT_GROUP_DAG]:
                run_task(inner, {**values, "draft_group": group})
    assert set(ran) == set(GRAPH.order)


def _key(asset: str, given: dict[str, str]) -> PartitionKey:
    shape = GRAPH.specs[asset].shape.name
    if shape == "month":
        return PartitionKey(month=given["month"], run_id=given["month_run_id"])
    if shape == "settled_date":
        return PartitionKey.from_segments(f"game_date={given['game_date']}")
    return PartitionKey.from_segments(
        f"game_date={given['game_date']}"
        + (f"/draft_group={given['draft_group']}" if shape == "draft_group" else "")
        + f"/run={given['run_id']}"
    )


def test_plan_and_summarize_containers_run_locally(seeded: str, tmp_path: Path) -> None:
    objects = generated_objects(GRAPH, CONFIG)
    range_templates = objects["workflowtemplate-range.yaml"]["spec"]["templates"]
    cron_templates = objects["cronworkflow-daily.yaml"]["spec"]["workflowSpec"]["templates"]
    containers = {t["name"]: t["container"] for t in range_templates + cron_templates if "container" in t}
    termination = tmp_path / "termination-log"
    termination.write_text("")
    env = dict(os.environ, PIPELINE_TODAY="2024-11-18", PIPELINE_TERMINATION_LOG=str(termination))
    values = {
        "catch_up_days": "1",
        "store": seeded,
        "correlation_id": "cron-test",
        "workflow_status": "Failed",
        "webhook_url": "none",
    }
    for name in ("plan", "summarize"):
        argv = [
            _substitute(a, values).replace(argo.OUTPUTS_DIR, str(tmp_path))
            for a in containers[name]["command"]
        ]
        argv[0] = sys.executable
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=300)
        if name == "plan":
            assert result.returncode == 0, result.stderr
            items = yaml.safe_load((tmp_path / "partitions.json").read_text())
            assert [i["game_date"] for i in items] == ["2024-11-17", "2024-11-18"]
        else:  # nothing ran: the summary says so and exits non-zero
            assert result.returncode == 1, result.stdout + result.stderr
            # ...and names the failed partitions in the pod's termination message, which Argo
            # makes the workflow's message.
            message = termination.read_text()
            assert message.startswith("2 of 2 partition(s) failed (backfill cron-test): 2024-11-17: ")
            assert "2024-11-18: " in message
    summary = open_store(seeded).get_json("backfills/cron-test/summary.json")
    assert summary["partitions"]["failed"] == 2 and summary["kind"] == "catch-up"
    # The exit handler's output artifacts and the figures its metrics read, at the paths the
    # template declares (tests/integration/test_argo_pane.py checks the declarations).
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    report = (tmp_path / "report.html").read_text()
    assert report.startswith("<!DOCTYPE html>") or "<html" in report[:200]
    assert "cron-test" in report
    figures = tmp_path
    assert (figures / "kind").read_text() == "catch-up"
    assert (figures / "partitions_failed").read_text() == "2"


def test_helm_chart_lints_and_templates_to_the_objects_the_code_builds() -> None:
    helm = helm_binary()
    lint = subprocess.run([helm, "lint", "--strict", str(CHART)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    objects = chart_objects("projections")
    templated = {(d["kind"], d["metadata"]["name"]): d for d in objects if d["kind"] in argo_kinds()}
    generated = {(d["kind"], d["metadata"]["name"]): d for d in generated_objects(GRAPH, CONFIG).values()}
    assert templated == generated
    for obj in objects:
        assert strict_errors(obj) == [], obj["kind"]


def argo_kinds() -> set[str]:
    return {"WorkflowTemplate", "CronWorkflow", "Workflow"}


def test_helm_values_reach_the_objects() -> None:
    objs = {
        d["kind"] + "/" + d["metadata"]["name"]: d
        for d in chart_objects(
            "projections",
            "schedule=30 16 * * *",
            "image=registry.example/step:1.2",
            "limits.stage\\.sim=3",
            "catchUpDays=5",
        )
    }
    cron = objs["CronWorkflow/projections-daily"]
    assert cron["spec"]["schedules"] == ["30 16 * * *"] and strict_errors(cron) == []
    assert {"name": "catch_up_days", "value": "5"} in cron["spec"]["workflowSpec"]["arguments"]["parameters"]
    assert objs["ConfigMap/projections-limits"]["data"]["stage.sim"] == "3"
    assert all(
        t["container"]["image"] == "registry.example/step:1.2"
        for t in objs["WorkflowTemplate/projections-partition"]["spec"]["templates"]
        if "container" in t
    )
    assert objs["Job/projections-buckets"]["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example/step:1.2"
    )


def test_the_chart_installs_into_any_namespace() -> None:
    """`helm install -n team-b`: every object lands in team-b and talks to team-b's MinIO."""
    objects = chart_objects("team-b")
    assert {o["metadata"]["namespace"] for o in objects} == {"team-b"}
    text = yaml.safe_dump_all(objects)
    assert "projections.svc" not in text and "minio.team-b.svc:9000" in text
    for binding in (o for o in objects if o["kind"] == "RoleBinding"):
        assert {s["namespace"] for s in binding["subjects"]} == {"team-b"}
    limits = by_kind(objects, "ConfigMap")[argo.LIMITS_CONFIGMAP]
    assert limits["data"] == {k: str(v) for k, v in CONFIG.limits.items()}
