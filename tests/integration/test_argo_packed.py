"""Packed mode (a slate's steps in one pod, a container per step) held to the containerSet rules
Argo applies (docs/argo-rules.md §9), and to the local runner: the same steps run, skip or are
held back for every pattern of step outcomes."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.argo_pod import executor_config, workflow_pod
from tests.argo_rules import (
    container_set_errors,
    exec_spec,
    global_parameter_errors,
    reachable_templates,
    sample_item,
    sample_shared,
    simulate_container_set,
    simulate_dag,
    volume_errors,
)
from tests.chart import by_kind, chart_objects
from tests.integration.test_argo_rules import (  # the local runner's side, shared with the unpacked test
    AGREES,
    GROUPS,
    SLATE,
    TASK_TO_ASSET,
    local_outcome,
    outcome_of,
    outcome_patterns,
    slate_plan,  # noqa: F401 - a fixture
)
from tests.kube import KubeAPIServer
from tests.strict import strict_errors
from workflows.argo import build as argo
from workflows.dag.config import load_config
from workflows.dag.graph import GraphError, build_graph, pipeline_graph
from workflows.dag.model import Plan

CONFIG = load_config()
GRAPH = pipeline_graph()
PACKED = argo.to_dict(argo.packed_partition_template(GRAPH, CONFIG))
TEMPLATES = {t["name"]: t for t in PACKED["spec"]["templates"]}
PARTITION = TEMPLATES["partition"]
PACKS = {name: TEMPLATES[name] for name in (argo.SLATE_PACK, argo.DRAFT_GROUP_PACK)}
UNPACKED = {t["name"]: t for t in argo.to_dict(argo.partition_template(GRAPH, CONFIG))["spec"]["templates"]}


def library() -> dict[str, dict[str, Any]]:
    return by_kind(chart_objects(), "WorkflowTemplate")


def packed_range(n: int = 9) -> dict[str, Any]:
    return argo.to_dict(
        argo.range_workflow(
            [sample_item()] * n,
            correlation_id="bf-packed",
            store_url="s3://projections",
            cfg=CONFIG,
            graph=GRAPH,
            shared=sample_shared(),
            packed=True,
        )
    )


def members(pack: dict[str, Any]) -> list[dict[str, Any]]:
    """A pack's step containers (every container but `main`)."""
    return [c for c in pack["containerSet"]["containers"] if c["name"] != argo.PACK_MAIN]


# ---- the objects ----------------------------------------------------------------------------
def test_packed_objects_validate_strictly() -> None:
    assert strict_errors(PACKED) == []
    assert strict_errors(packed_range()) == []


@pytest.mark.parametrize("name", sorted(PACKS))
def test_each_pack_is_a_valid_container_set(name: str) -> None:
    assert container_set_errors(PACKS[name]) == []


def test_every_step_is_a_container_of_a_pack_or_a_task_once() -> None:
    """So the UI shows each step as a node: a container is a node of its own, `<pack>.<name>`
    (workflow/controller/container_set_template.go executeContainerSet)."""
    contained = [c["name"] for pack in PACKS.values() for c in members(pack)]
    tasks = [t["name"] for t in PARTITION["dag"]["tasks"] if "templateRef" in t]
    shared = [argo.template_name(a) for a in argo.shared_assets(GRAPH)]
    assert sorted(contained + tasks + shared) == sorted(argo.template_name(a) for a in GRAPH.order)
    for task in (t for t in PARTITION["dag"]["tasks"] if "templateRef" in t):
        assert task["templateRef"] == {"name": argo.PARTITION_TEMPLATE, "template": task["name"]}


# ---- containerSet rules, each caught on a broken copy (container_set_template_types.go Validate,
# workflow/validate/validate.go validateLeaf, workflowpod.go, the emissary) ---------------------
def _broken(change: str) -> dict[str, Any]:
    pack = copy.deepcopy(PACKS[argo.SLATE_PACK])
    containers = pack["containerSet"]["containers"]
    if change == "duplicate":
        containers[1]["name"] = containers[0]["name"]
    elif change == "unknown dependency":
        containers[1]["dependencies"] = ["no-such-step"]
    elif change == "cycle":
        containers[0]["dependencies"] = [containers[-1]["name"]]
    elif change == "no main":
        pack["containerSet"]["containers"] = members(pack)
    elif change == "argo's name":
        containers[0]["name"] = "wait"
    elif change == "set mounts twice":
        pack["containerSet"]["volumeMounts"] *= 2
    elif change == "container repeats the set's mount":
        containers[0]["volumeMounts"] = [{"name": argo.SCRATCH_VOLUME, "mountPath": "/tmp"}]
    elif change == "no runs":
        pack["containerSet"]["retryStrategy"]["retries"] = "0"
    elif change == "output off the volume":
        pack["outputs"]["parameters"][0]["valueFrom"]["path"] = "/var/out/status"
    return pack


@pytest.mark.parametrize(
    "change, words",
    [
        ("duplicate", "is not unique"),
        ("unknown dependency", "dependency 'no-such-step' not defined"),
        ("cycle", "dependency cycle"),
        ("no main", 'container named "main"'),
        ("argo's name", "clash with Argo's own"),
        ("set mounts twice", "already mounted"),
        ("container repeats the set's mount", "which the set mounts too"),
        ("no runs", "retries 0"),
        ("output off the volume", "on no volume the set mounts"),
    ],
)
def test_the_container_set_rules_catch_what_argo_refuses(change: str, words: str) -> None:
    assert any(words in e for e in container_set_errors(_broken(change))), container_set_errors(
        _broken(change)
    )


def test_a_packs_mounts_come_from_the_set_and_name_volumes_the_running_spec_declares() -> None:
    """The set's volumeMounts reach every container (GetContainers), and addVolumeReferences
    looks each up in the running workflow's volumes (docs/argo-rules.md §7.1)."""
    for pack in PACKS.values():
        assert pack["containerSet"]["volumeMounts"] == [{"mountPath": "/tmp", "name": argo.SCRATCH_VOLUME}]
        assert all("volumeMounts" not in c for c in pack["containerSet"]["containers"])
    rng = packed_range()
    assert volume_errors(rng, library()) == []
    lib = copy.deepcopy(library())
    del lib[argo.RANGE_TEMPLATE]["spec"]["volumes"]  # a chunk child's volumes come from it
    errors = volume_errors(rng, lib)
    assert any("slate-pack" in e and "volume 'scratch' not found" in e for e in errors), errors


def test_a_packed_range_starts_its_chunks_at_chunk_packed() -> None:
    """A workflowTemplateRef child's own entrypoint wins over the template's (JoinWorkflowSpec):
    its chunk runs the packed partition DAG, every global it reads is its argument."""
    rng = packed_range()
    run_chunk = next(t for t in rng["spec"]["templates"] if t["name"] == "run-chunk")
    child = yaml.safe_load(run_chunk["resource"]["manifest"])
    assert child["spec"]["entrypoint"] == argo.CHUNK_PACKED
    spec = exec_spec(child, library())
    assert spec["entrypoint"] == argo.CHUNK_PACKED
    reached = {t["name"] for _, _, t in reachable_templates(child, library())}
    assert {argo.SLATE_PACK, argo.DRAFT_GROUP_PACK} <= reached and "dk-salaries" not in reached
    assert global_parameter_errors(rng, library()) == []
    unpacked = argo.child_manifest(CONFIG)
    assert "entrypoint" not in yaml.safe_load(unpacked)["spec"]
    assert rng["metadata"]["labels"][argo.MODE_LABEL] == "packed"
    assert "packed" in rng["metadata"]["annotations"][argo.DESCRIPTION]


# ---- the step command is the one of the unpacked template -----------------------------------
@pytest.mark.parametrize("name", sorted(PACKS))
def test_each_container_runs_its_steps_command_writing_to_its_own_directory(name: str) -> None:
    for container in members(PACKS[name]):
        unpacked = UNPACKED[container["name"]]["container"]["command"]
        command = container["command"]
        at = command.index("--outputs-dir")
        assert command[:at] + command[at + 2 :] == unpacked[:at] + unpacked[at + 2 :]
        asset = TASK_TO_ASSET[container["name"]]
        assert command[at + 1] == argo.pack_outputs_dir(asset) != unpacked[at + 1]
    dirs = [c["command"][c["command"].index("--outputs-dir") + 1] for c in members(PACKS[name])]
    assert len(set(dirs)) == len(dirs), "containers share /tmp: each needs its own directory"


@pytest.mark.parametrize("name", sorted(PACKS))
def test_each_containers_directory_lives_as_long_as_its_pod(name: str) -> None:
    """The emissary reruns a container in the same pod on any non-zero exit (docs/argo-rules.md
    §9.1); a step that exited 2 leaves a mark in its --outputs-dir (steps/cli.py
    NOT_RETRYABLE_MARK) so that rerun ends at once. The directory must outlive the container
    and not the pod: on an emptyDir volume the whole set mounts."""
    volumes = {v["name"]: v for v in PACKED["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in PACKS[name]["containerSet"]["volumeMounts"]}
    for container in members(PACKS[name]):
        directory = container["command"][container["command"].index("--outputs-dir") + 1]
        [(mount, volume)] = [
            (path, v) for path, v in mounts.items() if directory.startswith(path.rstrip("/") + "/")
        ]
        assert "emptyDir" in volumes[volume], (container["name"], mount, volumes[volume])
        assert "volumeMounts" not in container  # the set's mount is every container's (GetContainers)


def test_the_pack_outputs_the_draft_groups_the_fan_out_reads() -> None:
    pack = PACKS[argo.SLATE_PACK]
    outputs = {p["name"]: p["valueFrom"] for p in pack["outputs"]["parameters"]}
    source = argo.template_name("dk.salaries")
    assert outputs["draft_groups"] == {
        "path": f"{argo.OUTPUTS_DIR}/{source}/draft_groups.json",
        "default": "[]",
    }
    fan_out = next(t for t in PARTITION["dag"]["tasks"] if t["name"] == argo.DRAFT_GROUPS_TASK)
    assert fan_out["withParam"] == "{{tasks.%s.outputs.parameters.draft_groups}}" % argo.SLATE_PACK  # noqa: UP031
    assert fan_out["template"] == argo.DRAFT_GROUP_PACK and argo.SLATE_PACK in fan_out["depends"].split(
        " && "
    )
    for container in members(pack):  # each step's status and summary, for its metrics
        param = argo.shared_param(TASK_TO_ASSET[container["name"]])
        assert (
            outputs[f"{param}_status"]["default"] == "unknown"
            and outputs[f"{param}_summary"]["default"] == "{}"
        )


# ---- conditional logic, retries, timeouts, requests -------------------------------------------
def test_no_pack_holds_a_step_that_must_skip_after_another_and_skippers_keep_their_when() -> None:
    """Containers have no `when`: a step that may skip with steps below it, or that skips after
    another, runs as a task with the `when` of the unpacked DAG (docs/argo-rules.md §7.2)."""
    for pack in PACKS.values():
        names = {c["name"] for c in members(pack)}
        for container in members(pack):
            asset = TASK_TO_ASSET[container["name"]]
            assert not GRAPH.skip_sources(asset), asset
            if GRAPH.specs[asset].may_skip:
                assert not any(
                    container["name"] in c.get("dependencies", [])
                    for c in members(pack)
                    if c["name"] in names
                )
    unpacked_dag = {t["name"]: t for t in UNPACKED["partition"]["dag"]["tasks"]}
    for task in (t for t in PARTITION["dag"]["tasks"] if "templateRef" in t):
        assert task.get("when") == unpacked_dag[task["name"]].get("when"), task["name"]


def test_a_graph_whose_pack_would_hold_back_an_independent_step_is_refused() -> None:
    """A task that reads part of a pack waits for all of it: refused where that would hold it
    back more than the local runner does (one that reads only the odds would wait for sim.run)."""
    odds = GRAPH.specs["ingest.odds"]
    reader = dataclasses.replace(
        odds, asset="odds.report", consumes=("ingest.odds",), sources=(), concurrency=()
    )
    graph = build_graph([*GRAPH.specs.values(), reader])
    with pytest.raises(GraphError, match="not the whole slate pack"):
        argo.slate_pack(graph)


def test_a_packs_retries_deadline_semaphores_and_requests() -> None:
    for name, pack in PACKS.items():
        specs = [GRAPH.specs[TASK_TO_ASSET[c["name"]]] for c in members(pack)]
        attempts = (
            max((s.retries if s.retries is not None else CONFIG.runner.retries.limit) for s in specs) + 1
        )
        retry = pack["containerSet"]["retryStrategy"]
        assert retry == {
            "retries": str(attempts),
            "duration": f"{int(CONFIG.runner.retries.backoff_seconds)}s",
        }
        # No template-level retry: a new pod would recompute every step under --force.
        assert "retryStrategy" not in pack
        deadline = int(pack["activeDeadlineSeconds"])
        assert all(deadline >= s.timeout_s * attempts for s in specs)
        groups = sorted({g for s in specs for g in s.concurrency})
        assert [
            sem["configMapKeyRef"]["key"] for sem in pack.get("synchronization", {}).get("semaphores", [])
        ] == groups
        cpu = sum(int(c["resources"]["requests"]["cpu"].removesuffix("m")) for c in members(pack))
        memory = sum(int(c["resources"]["requests"]["memory"].removesuffix("Mi")) for c in members(pack))
        assert cpu <= 1000 and memory <= 1024, (name, cpu, memory)  # argo.pack_cpu / pack_memory
        for container in pack["containerSet"]["containers"]:
            asset = TASK_TO_ASSET.get(container["name"])
            if asset:
                assert container["resources"]["limits"] == {
                    "cpu": GRAPH.specs[asset].resources.cpu_limit,
                    "memory": GRAPH.specs[asset].resources.memory_limit,
                }


def test_main_runs_last_and_does_nothing() -> None:
    for pack in PACKS.values():
        main = next(c for c in pack["containerSet"]["containers"] if c["name"] == argo.PACK_MAIN)
        assert main["command"] == ["true"]
        below = {d for c in members(pack) for d in c.get("dependencies", [])}
        assert sorted(main["dependencies"]) == sorted(
            c["name"] for c in members(pack) if c["name"] not in below
        )


def test_a_failed_step_errors_only_its_own_downstream_containers() -> None:
    """The emissary runs a container only once its dependencies exited 0; others go on."""
    pack = PACKS[argo.SLATE_PACK]

    def run(name: str, item: str | None) -> tuple[str, dict[str, str]]:
        return ("Failed", {}) if name == "ingest-odds" else ("Succeeded", {"status": "success"})

    phases, phase, outputs = simulate_container_set(pack, run)
    assert phase == "Failed" and phases["ingest-odds"] == "Failed"
    assert (
        phases["minutes-features"] == "Error" and phases["sim-run"] == "Error" and phases["main"] == "Error"
    )
    assert phases["minutes-train"] == "Succeeded" and phases["ingest-injuries"] == "Succeeded"
    assert outputs["ingest_odds_status"] == "unknown" and outputs["ingest_injuries_status"] == "success"


# ---- one outcome on both runners ----------------------------------------------------------------
AGREES_PACKED = {**AGREES, "blocked": {"Omitted", "Error"}}  # Error: a container whose dependency failed


def packed_outcome(pattern: dict[str, str]) -> tuple[dict[tuple[str, str | None], str], str]:
    def run(name: str, group: str | None) -> tuple[str, dict[str, str]]:
        status = outcome_of(pattern, TASK_TO_ASSET[name], group)
        return (
            ("Failed", {})
            if status == "failed"
            else ("Succeeded", {"status": status, "draft_groups": json.dumps(GROUPS)})
        )

    phases, dag = simulate_dag(PARTITION, run, TEMPLATES)
    out: dict[tuple[str, str | None], str] = {}
    for name, phase in phases.items():
        head, _, inner = name.rpartition("/")
        step = inner if head else name
        if step in TASK_TO_ASSET:
            out[(TASK_TO_ASSET[step], head[head.index("(") + 1 : -1] if "(" in head else None)] = phase
    if phases.get(argo.DRAFT_GROUPS_TASK) in ("Omitted", "Skipped"):
        for asset in argo.draft_group_pack(GRAPH):
            out.update({(asset, g): phases[argo.DRAFT_GROUPS_TASK] for g in GROUPS})
    return out, dag


def test_local_runner_and_the_packed_dag_agree_on_every_outcome(slate_plan: Plan, tmp_path: Path) -> None:  # noqa: F811
    for number, pattern in enumerate(outcome_patterns()):
        local = local_outcome(pattern, slate_plan, tmp_path / str(number))
        phases, dag_phase = packed_outcome(pattern)
        for node, (status, ran_locally) in local.items():
            phase = phases.get(node)
            assert phase in AGREES_PACKED[status], (pattern, node, status, phase)
            assert (phase in ("Succeeded", "Failed")) == ran_locally, (pattern, node)
        failed_locally = any(status == "failed" for status, _ in local.values())
        assert (dag_phase == "Failed") == failed_locally, (pattern, dag_phase)
    assert SLATE  # the slate local_outcome compares


# ---- the pod ---------------------------------------------------------------------------------
def packed_pods(executor: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    child = next(
        yaml.safe_load(t["resource"]["manifest"])
        for t in packed_range()["spec"]["templates"]
        if "resource" in t
    )
    spec = exec_spec(child, library())
    return [
        (where, workflow_pod(spec, template, executor=executor))
        for where, _, template in reachable_templates(child, library())
        if "containerSet" in template
    ]


def test_a_packs_pod_has_argos_containers_then_one_per_step_each_hardened() -> None:
    """workflowpod.go: init; wait, then the set's containers in order, each under the emissary
    with /var/run/argo; PodSecurity restricted checks every one of them (docs/argo-rules.md §6)."""
    pods = packed_pods(executor_config())
    assert len(pods) == 2
    for _, pod in pods:
        spec = pod["spec"]
        names = [c["name"] for c in spec["containers"]]
        assert names[0] == "wait" and names[-1] == argo.PACK_MAIN and len(names) == len(set(names))
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["initContainers"] + spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
        for container in spec["containers"][1:]:
            assert container["command"][:3] == ["/var/run/argo/argoexec", "emissary", "--"]
            assert {"name": "scratch", "mountPath": "/tmp"} in container["volumeMounts"]


@pytest.fixture(scope="module")
def restricted(kube_api: KubeAPIServer) -> str:
    """A namespace that enforces PodSecurity restricted, with the pods' account."""
    from kubernetes import client

    core = client.CoreV1Api(kube_api.api_client())
    namespace = "projections-packed"
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    core.create_namespace({"metadata": {"name": namespace, "labels": labels}})
    core.create_namespaced_service_account(namespace, {"metadata": {"name": CONFIG.argo.service_account}})
    return namespace


def _admit(kube_api: KubeAPIServer, namespace: str, pod: dict[str, Any]) -> str | None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        client.CoreV1Api(kube_api.api_client()).create_namespaced_pod(namespace, pod, dry_run="All")
    except ApiException as exc:
        return str(json.loads(exc.body)["message"])
    return None


def test_a_real_api_server_admits_every_packs_pod(kube_api: KubeAPIServer, restricted: str) -> None:
    refused = {
        where: why
        for where, pod in packed_pods(executor_config())
        if (why := _admit(kube_api, restricted, pod))
    }
    assert refused == {}
    executor = executor_config()
    del executor["securityContext"]
    _, pod = packed_pods(executor)[0]
    message = _admit(kube_api, restricted, pod)
    assert message is not None and 'allowPrivilegeEscalation != false (containers "init", "wait"' in message
