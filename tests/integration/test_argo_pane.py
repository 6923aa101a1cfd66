"""What the Argo UI and Prometheus show of a run, held on the compiled objects (docs/argo-rules.md
§8): titles and descriptions, the exit handler's output artifacts, and custom metrics."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import pytest
import yaml

from steps.runtime import layout
from steps.runtime.manifest import STOPPED_SHORT
from tests.argo_pod import controller_config
from tests.argo_rules import sample_item, sample_shared
from tests.chart import by_kind, chart_objects
from workflows.argo import build as argo
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph

CONFIG = load_config()
GRAPH = pipeline_graph()
TAG = re.compile(r"{{(.*?)}}")
METRIC_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # metrics.IsValidMetricName (no ':')


def range_obj(as_of_mode: str | None = "lock", n: int = 70) -> dict[str, Any]:
    days = [f"2024-11-{d:02d}" for d in range(1, 31)] + [f"2024-12-{d:02d}" for d in range(1, 32)]
    items = [sample_item(days[i % len(days)], "2024-11-18T23:30:00Z", worlds=200) for i in range(n)]
    return argo.to_dict(
        argo.range_workflow(
            items,
            correlation_id="bf-20241118-abc",
            store_url="s3://projections",
            cfg=CONFIG,
            graph=GRAPH,
            shared=sample_shared(),
            reason="re-run after the 'injury' feed fix",
            as_of_mode=as_of_mode,
        )
    )


def cron_obj() -> dict[str, Any]:
    return by_kind(chart_objects(), "CronWorkflow")[argo.CRON_NAME]


def templates_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["workflowSpec"] if obj["kind"] == "CronWorkflow" else obj["spec"]
    return spec


def templates_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(templates_spec(obj)["templates"])


def every_object() -> list[dict[str, Any]]:
    return [*by_kind(chart_objects(), "WorkflowTemplate").values(), cron_obj(), range_obj()]


# ---- §8.1 titles and descriptions ---------------------------------------------------------


def test_the_range_workflow_says_its_dates_partitions_mode_and_id() -> None:
    notes = range_obj()["metadata"]["annotations"]
    assert notes[argo.TITLE] == "Projections range 2024-11-01 to 2024-12-31"
    description = notes[argo.DESCRIPTION]
    for words in (
        "70 partition(s)",
        f"{-(-70 // CONFIG.argo.chunk_size)} chunk(s)",
        "as-of mode lock",
        "bf-20241118-abc",
    ):
        assert words in description
    assert "as-of per partition" in range_obj(as_of_mode=None)["metadata"]["annotations"][argo.DESCRIPTION]


def test_every_chunk_child_carries_its_own_title_and_description() -> None:
    """The manifest names only inputs run-chunk declares; every chunk task passes them as one
    line without quotes, so the substituted manifest is still the YAML we mean."""
    obj = range_obj()
    templates = {t["name"]: t for t in obj["spec"]["templates"]}
    run_chunk = templates["run-chunk"]
    declared = {p["name"] for p in run_chunk["inputs"]["parameters"]}
    manifest = run_chunk["resource"]["manifest"]
    used = {t.strip().removeprefix("inputs.parameters.") for t in TAG.findall(manifest) if "inputs." in t}
    assert used <= declared
    tasks = [t for t in templates["range"]["dag"]["tasks"] if t.get("template") == "run-chunk"]
    assert len(tasks) == -(-70 // CONFIG.argo.chunk_size)
    for number, task in enumerate(tasks, start=1):
        args = {p["name"]: p["value"] for p in task["arguments"]["parameters"]}
        assert set(args) == declared
        for key in ("title", "description"):
            assert "'" not in args[key] and "\n" not in args[key]
        filled = manifest
        for name, value in args.items():
            filled = filled.replace("{{inputs.parameters.%s}}" % name, value)  # noqa: UP031
        child = yaml.safe_load(filled)
        notes = child["metadata"]["annotations"]
        assert notes[argo.TITLE].startswith(f"Projections chunk {number}/{len(tasks)}: 2024-")
        assert "bf-20241118-abc" in notes[argo.DESCRIPTION] and "as-of mode lock" in notes[argo.DESCRIPTION]


def test_the_daily_run_is_titled_with_variables_argo_fills_at_start() -> None:
    """setExecWorkflow: setGlobalParameters, substituteGlobalVariables over the spec (templates
    excepted, workflowMetadata included), then updateWorkflowMetadata copies the annotations."""
    spec = cron_obj()["spec"]["workflowSpec"]
    notes = spec["workflowMetadata"]["annotations"]
    params = {p["name"] for p in spec["arguments"]["parameters"]}
    for key in (argo.TITLE, argo.DESCRIPTION):
        for tag in TAG.findall(notes[key]):
            tag = tag.strip()
            assert (
                tag == "workflow.name"
                or re.fullmatch(r"workflow\.creationTimestamp\.[A-Za-z]", tag)
                or (tag.startswith("workflow.parameters.") and tag.split(".", 2)[2] in params)
            ), tag
    assert "{{workflow.name}}" in notes[argo.DESCRIPTION]
    assert "{{workflow.parameters.catch_up_days}}" in notes[argo.DESCRIPTION]


# ---- §8.2 the exit handler's output artifacts ----------------------------------------------


@pytest.mark.parametrize("obj", [range_obj(), cron_obj()], ids=["range", "cron"])
def test_summarize_publishes_summary_and_report_as_viewable_optional_artifacts(obj: dict[str, Any]) -> None:
    summarize = next(t for t in templates_of(obj) if t["name"] == argo.EXIT_HANDLER)
    artifacts = {a["name"]: a for a in summarize["outputs"]["artifacts"]}
    assert set(artifacts) == {"summary", "report"}
    command = summarize["container"]["command"]
    mounts = [v["mountPath"] for v in summarize["container"]["volumeMounts"]]
    for name, ext, flag in (("summary", ".json", "--summary-file"), ("report", ".html", "--report-file")):
        art = artifacts[name]
        assert art["archive"] == {"none": {}}, "tgz artifacts are not shown by the UI"
        assert art["optional"] is True, "a missing non-optional artifact fails the step"
        assert art["path"].endswith(ext), "the UI renders json/html/txt/images by the key's extension"
        assert command[command.index(flag) + 1] == art["path"]
        # On the scratch volume: the wait container reads it through its /mainctrfs mirror,
        # and with archive none the key ends in the file's own name.
        assert any(art["path"].startswith(m + "/") for m in mounts)
        assert "key" not in art and "s3" not in art  # the configured repository, default key
    assert obj["spec"].get(
        "artifactRepositoryRef", obj["spec"].get("workflowSpec", {}).get("artifactRepositoryRef")
    )


# ---- §8.3 links ----------------------------------------------------------------------------
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def ui_link_object(scope: str, workflow: dict[str, Any]) -> dict[str, Any]:
    """What the UI substitutes a link's `${...}` from (ui/src/shared/components/links.tsx,
    processURL): workflow-details.tsx passes the workflow's name and namespace, pod links
    (workflow-node-info.tsx) the pod's name and the owning workflow, never the pod's labels."""
    name = "projections-range-x7k2p"
    workflow = {**workflow, "metadata": {**workflow["metadata"], "name": name, "namespace": "projections"}}
    metadata = {"namespace": "projections", "name": name if scope == "workflow" else f"{name}-step-123"}
    return {"metadata": metadata, "workflow": workflow, "status": {"startedAt": "", "finishedAt": ""}}


def fill_link(url: str, scope: str, workflow: dict[str, Any]) -> str:
    """The URL the UI opens; a path it cannot walk raises (the UI would print null or '')."""
    source = ui_link_object(scope, workflow)

    def walk(match: re.Match[str]) -> str:
        node: Any = source
        path = match.group(1)
        head, _, rest = path.partition(".labels.")
        for part in head.split("."):
            node = node[part]
        if rest:  # a label key may hold '/' and '-' (and, in newer UIs, dots)
            node = node["labels"][rest]
        assert isinstance(node, str) and node, f"{path} is empty"
        return node

    return PLACEHOLDER.sub(walk, url)


def created_workflows() -> list[dict[str, Any]]:
    """Every workflow the project creates, with metadata as the controller would give it: a
    submitted range, one of its chunk children, and a daily run of the CronWorkflow."""
    rng = range_obj()
    child = yaml.safe_load(argo.child_manifest(CONFIG))
    child["metadata"]["labels"][argo.CORRELATION_LABEL] = rng["metadata"]["labels"][argo.CORRELATION_LABEL]
    # A daily run's metadata is the CronWorkflow's workflowMetadata, its labelsFrom evaluated
    # (workflow/cron/operator.go builds the Workflow; operator.go updateWorkflowMetadata).
    metadata = templates_spec(cron_obj())["workflowMetadata"]
    assert metadata["labelsFrom"][argo.CORRELATION_LABEL] == {"expression": "workflow.name"}
    labels = {**metadata.get("labels", {}), argo.CORRELATION_LABEL: "projections-daily-1732406400"}
    daily = {"metadata": {"labels": labels, "annotations": metadata["annotations"]}}
    return [rng, child, daily]


def test_every_link_resolves_on_every_workflow_the_project_creates() -> None:
    links = controller_config("links")
    assert {link["scope"] for link in links} == {"workflow", "pod"}
    for link in links:
        for workflow in created_workflows():
            url = fill_link(link["url"], link["scope"], workflow)
            assert url.startswith("http://localhost:9001/browser/"), url
            assert "null" not in url and "${" not in url, url


def test_the_workflow_link_opens_the_folder_holding_the_summary_and_the_report() -> None:
    [link] = [x for x in controller_config("links") if x["scope"] == "workflow"]
    for workflow in created_workflows():
        url = fill_link(link["url"], "workflow", workflow)
        bucket, _, prefix = url.removeprefix("http://localhost:9001/browser/").partition("/")
        assert f"s3://{bucket}" == CONFIG.argo.store_url
        folder = urllib.parse.unquote(prefix)
        backfill_id = workflow["metadata"]["labels"][argo.CORRELATION_LABEL]
        for name in ("summary.json", "report.html"):
            assert f"{folder}{name}" == layout.backfill_key(backfill_id, name)


def test_the_pod_link_opens_the_folder_argo_archives_that_pods_logs_in() -> None:
    [link] = [x for x in controller_config("links") if x["scope"] == "pod"]
    repository = controller_config("artifactRepository")["s3"]
    workflow = range_obj()
    url = fill_link(link["url"], "pod", workflow)
    bucket, _, prefix = url.removeprefix("http://localhost:9001/browser/").partition("/")
    assert bucket == repository["bucket"] == CONFIG.argo.artifact_bucket
    pod = ui_link_object("pod", workflow)
    expected = (
        repository["keyFormat"]
        .replace("{{workflow.namespace}}", pod["metadata"]["namespace"])
        .replace("{{workflow.name}}", pod["workflow"]["metadata"]["name"])
        .replace("{{pod.name}}", pod["metadata"]["name"])
    )
    assert urllib.parse.unquote(prefix) == f"{expected}/"


# ---- §8.4 custom metrics -------------------------------------------------------------------

SCOPE_FIXED = {"duration", "status", "exitCode", "retries"}


def _scope_ok(tag: str, template: dict[str, Any], params: set[str]) -> bool:
    ins = {p["name"] for p in template.get("inputs", {}).get("parameters", [])}
    outs = {p["name"] for p in template.get("outputs", {}).get("parameters", [])}
    if tag in SCOPE_FIXED or tag in ("workflow.name", "workflow.namespace"):
        return True
    kind, _, name = tag.partition(".parameters.")
    return (
        (kind == "inputs" and name in ins)
        or (kind == "outputs" and name in outs)
        or (kind == "workflow" and name in params)
    )


def _tags(text: str) -> list[str]:
    """Simple tags as they are; an expression's variable references."""
    found = []
    for tag in TAG.findall(text):
        tag = tag.strip()
        if tag.startswith("="):
            found += re.findall(r"\b((?:inputs|outputs|workflow)\.parameters\.\w+)", tag)
            found += [w for w in re.findall(r"\b(duration|status|exitCode|retries)\b", tag)]
        else:
            found.append(tag)
    return found


def metrics_of(obj: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(t, m) for t in templates_of(obj) for m in (t.get("metrics") or {}).get("prometheus", [])]


def test_every_step_template_and_the_exit_handler_emit_metrics() -> None:
    partition = by_kind(chart_objects(), "WorkflowTemplate")[argo.PARTITION_TEMPLATE]
    steps = [t for t in partition["spec"]["templates"] if "container" in t]
    for t in steps:
        names = {m["name"] for m in t["metrics"]["prometheus"]}
        assert names == {"projections_step_duration_seconds", "projections_step_outcome_total"}
        labels = {
            m["name"]: {lb["key"]: lb["value"] for lb in m["labels"]} for m in t["metrics"]["prometheus"]
        }
        assert all(lbs["asset"] == t["metadata"]["labels"]["projections/asset"] for lbs in labels.values())
    summarize = next(t for t in templates_of(range_obj()) if t["name"] == argo.EXIT_HANDLER)
    assert {m["name"] for m in summarize["metrics"]["prometheus"]} == {
        f"projections_range_{f}" for f in argo.RANGE_FIGURES
    }


@pytest.mark.parametrize("obj", every_object(), ids=lambda o: o["metadata"].get("name") or "range")
def test_every_metric_resolves_at_run_time(obj: dict[str, Any]) -> None:
    """computeMetrics substitutes name, help, labels, when and value from the node's own scope
    (prepareMetricScope) with unresolved tags an error; realtime gauges take only a bare
    `{{workflow.duration}}`/`{{duration}}`; label keys are metric names; help is required."""
    spec = obj["spec"]["workflowSpec"] if obj["kind"] == "CronWorkflow" else obj["spec"]
    params = {p["name"] for p in spec.get("arguments", {}).get("parameters", [])}
    for template, metric in metrics_of(obj):
        where = f"{template['name']}/{metric['name']}"
        assert METRIC_NAME.match(metric["name"]), where
        assert metric.get("help"), where
        kinds = [k for k in ("gauge", "counter", "histogram") if k in metric]
        assert len(kinds) == 1, where
        body = metric[kinds[0]]
        assert body.get("value"), where
        if kinds[0] == "gauge":
            assert "realtime" in body, where  # the schema requires it
            if body["realtime"]:
                assert body["value"] in ("{{workflow.duration}}", "{{duration}}"), where
        texts = [body["value"], metric.get("when", "")]
        for label in metric.get("labels", []):
            assert METRIC_NAME.match(label["key"]), where
            assert label["value"], where
            texts.append(label["value"])
        for text in texts:
            for tag in _tags(text):
                assert _scope_ok(tag, template, params | set(argo.ALL_PARAMS)), f"{where}: {{{{{tag}}}}}"


def test_label_values_read_only_outputs_that_are_never_empty() -> None:
    """An output parameter a label reads has a non-empty default (the file may be missing)."""
    for obj in every_object():
        for template, metric in metrics_of(obj):
            outs = {p["name"]: p for p in template.get("outputs", {}).get("parameters", [])}
            for label in metric.get("labels", []):
                for tag in _tags(label["value"]):
                    if tag.startswith("outputs.parameters."):
                        default = outs[tag.split(".", 2)[2]]["valueFrom"].get("default")
                        assert default, f"{template['name']}/{metric['name']} reads {tag} without a default"


def test_a_metric_name_has_one_help_and_one_type_everywhere() -> None:
    """matchExistingMetric: a second help or type under a registered name is refused."""
    seen: dict[str, tuple[str, str]] = {}
    for obj in every_object():
        for _, metric in metrics_of(obj):
            kind = next(k for k in ("gauge", "counter", "histogram") if k in metric)
            seen.setdefault(metric["name"], (metric["help"], kind))
            assert seen[metric["name"]] == (metric["help"], kind), metric["name"]


def test_range_gauges_emit_only_when_their_figure_was_written() -> None:
    summarize = next(t for t in templates_of(range_obj()) if t["name"] == argo.EXIT_HANDLER)
    for metric in summarize["metrics"]["prometheus"]:
        value = metric["gauge"]["value"]
        assert metric["when"] == f"'{value}' != ''"


def test_the_outcome_expression_names_every_outcome() -> None:
    for outcome in ("'ran'", "'reused'", "'not_due'", "'not_promoted'", "'failed'"):
        assert outcome in argo.STEP_OUTCOME
    assert argo.STEP_OUTCOME.startswith("{{=") and argo.STEP_OUTCOME.count("{{") == 1


def _outcome_of(status: str, reused: bool) -> str:
    """The outcome expression evaluated for given outputs (its `==`, `? :` and parentheses)."""
    text = argo.STEP_OUTCOME.removeprefix("{{=").removesuffix("}}")
    text = text.replace("jsonpath(outputs.parameters.summary, '$.reused') == true", str(reused))
    tokens = re.findall(
        r"'[^']*'|True|False|==|[?:()]", text.replace("outputs.parameters.status", repr(status))
    )

    def ternary(i: int) -> tuple[object, int]:
        cond, i = equality(i)
        if i < len(tokens) and tokens[i] == "?":
            yes, i = ternary(i + 1)
            assert tokens[i] == ":"
            no, i = ternary(i + 1)
            return (yes if cond else no), i
        return cond, i

    def equality(i: int) -> tuple[object, int]:
        left, i = primary(i)
        if i < len(tokens) and tokens[i] == "==":
            right, i = primary(i + 1)
            return left == right, i
        return left, i

    def primary(i: int) -> tuple[object, int]:
        if tokens[i] == "(":
            value, i = ternary(i + 1)
            assert tokens[i] == ")"
            return value, i + 1
        return (tokens[i] == "True") if tokens[i] in ("True", "False") else tokens[i].strip("'"), i + 1

    value, end = ternary(0)
    assert end == len(tokens)
    return str(value)


def test_the_outcome_label_is_the_local_runners_word_for_each_status() -> None:
    """A step's status output as the manifest says it, labelled as the local runner's task
    result says it (docs/decisions.md D21); a missing status (the default) counts as failed."""
    assert _outcome_of("success", reused=False) == "ran"
    assert _outcome_of("success", reused=True) == "reused"
    for word in STOPPED_SHORT:
        assert _outcome_of(word, reused=False) == word
    assert _outcome_of("failed", reused=False) == "failed"
    assert _outcome_of("unknown", reused=False) == "failed"
