"""The cluster path against a real Kubernetes API server (built from source; tests/kube.py).

Argo v4.1.2 is installed from its own manifests (`../shared/argo-v4.1.2/manifests`) through
the project's kustomize overlay, server-side; the chart is installed with the real Helm into
two namespaces that enforce PodSecurity `restricted`. Then the server judges what only it
can: admission of every pod Argo would create for the project's templates (tests/argo_pod.py
builds them as workflowpod.go does), RBAC of both identities (SubjectAccessReviews, and
`pipeline cron apply` with each identity's own token), and Helm's ownership of the objects.

It is no cluster: nothing schedules or runs pods, and no controller fills in tokens or runs
the bucket Job; what needs a running cluster is in docs/runbooks/cluster.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.argo_pod import controller_config, executor_config, template_pod, workflow_pod
from tests.argo_rules import exec_spec, reachable_templates, submitted_objects
from tests.chart import CHART, by_kind, chart_objects, helm_binary
from tests.helpers import run_pipeline_cli
from tests.kube import KubeAPIServer, kubectl_binary, kustomize_binary
from tests.strict import ARGO, REPO
from workflows.argo import build as argo
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph

CONFIG = load_config()
GRAPH = pipeline_graph()
NAMESPACES = ("projections", "team-b")


def run(*argv: str, env: dict[str, str], stdin: str | None = None) -> str:
    result = subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, env={**os.environ, **env}, check=False
    )
    assert result.returncode == 0, f"{' '.join(argv[:3])}: {result.stdout}\n{result.stderr}"
    return result.stdout


def build_overlay(tmp: Path) -> str:
    """`kustomize build` of the air-gapped install, with Argo's release manifests where the
    operator would copy them."""
    shutil.copytree(REPO / "k8s" / "argo", tmp / "argo")
    upstream = tmp / "argo" / "airgapped" / "upstream"
    upstream.mkdir()
    (upstream / "manifests").symlink_to(ARGO / "manifests")
    return run(kustomize_binary(), "build", str(tmp / "argo" / "airgapped"), env={})


@pytest.fixture(scope="module")
def cluster(kube_api: KubeAPIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("cluster")
    env = kube_api.env()
    rendered = build_overlay(tmp)
    kubectl = kubectl_binary()
    run(kubectl, "apply", "--server-side", "-f", "-", env=env, stdin=rendered)
    run(kubectl, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all", env=env)
    for namespace in NAMESPACES:
        run(kubectl, "create", "namespace", namespace, env=env)
        run(
            kubectl, "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted", env=env
        )
        # A cluster's controller-manager creates each namespace's `default` account; none runs here.
        run(kubectl, "-n", namespace, "create", "serviceaccount", "default", env=env)
        # --no-hooks: the bucket Job needs a running cluster (its pod is admitted below).
        run(helm_binary(), "install", "projections", str(CHART), "-n", namespace, "--no-hooks", env=env)
    # RBAC serves new bindings from an informer cache: wait until the last install is visible.
    deadline = time.monotonic() + 20
    while not can(kube_api, CONFIG.argo.operator_service_account, "create", "argoproj.io/workflows"):
        assert time.monotonic() < deadline, "the chart's RoleBindings never took effect"
        time.sleep(0.2)
    yield {"env": env, "rendered": [d for d in yaml.safe_load_all(rendered) if d], "tmp": tmp}


def api(kube_api: KubeAPIServer) -> Any:
    from kubernetes import client

    return client.CoreV1Api(kube_api.api_client())


def admit(kube_api: KubeAPIServer, namespace: str, pod: dict[str, Any]) -> str | None:
    """None when the API server admits the pod (dry run), else its refusal."""
    from kubernetes.client.exceptions import ApiException

    try:
        api(kube_api).create_namespaced_pod(namespace, pod, dry_run="All")
    except ApiException as exc:
        return str(json.loads(exc.body)["message"])
    return None


# ---- the Argo install --------------------------------------------------------------------
def test_the_overlay_renders_argo_v4_1_2_with_the_projects_settings(cluster: dict[str, Any]) -> None:
    objects = cluster["rendered"]
    deployments = by_kind(objects, "Deployment")
    assert set(deployments) == {"workflow-controller", "argo-server"}
    images = {c["image"] for d in deployments.values() for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"quay.io/argoproj/workflow-controller:v4.1.2", "quay.io/argoproj/argocli:v4.1.2"}
    assert by_kind(objects, "Service")["argo-server"]["spec"]["ports"][0]["port"] == 2746
    assert by_kind(objects, "Namespace")["argo"]["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"
    ] == ("restricted")
    data = by_kind(objects, "ConfigMap")["workflow-controller-configmap"]["data"]
    executor = yaml.safe_load(data["executor"])
    assert executor["securityContext"]["allowPrivilegeEscalation"] is False
    assert executor["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert yaml.safe_load(data["artifactRepository"])["s3"]["bucket"] == CONFIG.argo.artifact_bucket
    assert {link["scope"] for link in yaml.safe_load(data["links"])} == {"workflow", "pod"}
    # The custom metrics are served where the official metrics Service sends scrapers.
    metrics = yaml.safe_load(data["metricsConfig"])
    assert metrics["enabled"] is True and metrics["path"] == "/metrics"
    service = by_kind(objects, "Service")["workflow-controller-metrics"]
    controller = deployments["workflow-controller"]["spec"]["template"]
    assert service["metadata"]["namespace"] == "argo"
    assert service["spec"]["selector"].items() <= controller["metadata"]["labels"].items()
    [port] = service["spec"]["ports"]
    [container] = controller["spec"]["containers"]
    named_ports = {p["name"]: p["containerPort"] for p in container["ports"] if "name" in p}
    assert named_ports[port["targetPort"]] == metrics["port"]


def test_argos_own_pods_are_admitted(cluster: dict[str, Any], kube_api: KubeAPIServer) -> None:
    for deployment in by_kind(cluster["rendered"], "Deployment").values():
        assert admit(kube_api, "argo", template_pod(deployment, namespace="argo")) is None


def test_the_online_install_pins_the_release() -> None:
    online = yaml.safe_load((REPO / "k8s" / "argo" / "online" / "kustomization.yaml").read_text())
    [remote] = [r for r in online["resources"] if "://" in r]
    assert remote.endswith("/manifests/cluster-install?ref=v4.1.2")
    airgapped = yaml.safe_load((REPO / "k8s" / "argo" / "airgapped" / "kustomization.yaml").read_text())
    assert online["components"] == airgapped["components"] == ["../overlay"]


# ---- pods Argo would create --------------------------------------------------------------
def workflow_pods(namespace: str, executor: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    library = by_kind(chart_objects(namespace), "WorkflowTemplate")
    repository = controller_config("artifactRepository")
    pods = []
    for obj in submitted_objects(chart_objects(namespace)):
        spec = exec_spec(obj, library)
        for where, _, template in reachable_templates(obj, library):
            if "container" in template or "resource" in template:
                pod = workflow_pod(spec, template, executor=executor, artifact_repository=repository)
                pods.append((where, pod))
    return pods


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_pod_argo_would_create_is_admitted(
    cluster: dict[str, Any], kube_api: KubeAPIServer, namespace: str
) -> None:
    pods = workflow_pods(namespace, executor_config())
    kinds = {p["spec"]["containers"][1]["command"][3] for _, p in pods}
    assert len(pods) > 20 and {"argoexec", "python"} <= kinds  # step, ops and resource pods
    refused = {where: why for where, pod in pods if (why := admit(kube_api, namespace, pod))}
    assert refused == {}


def test_without_the_executor_settings_step_pods_are_refused(
    cluster: dict[str, Any], kube_api: KubeAPIServer
) -> None:
    """What the real cluster said before the overlay set the executor's securityContext."""
    executor = executor_config()
    del executor["securityContext"]
    pod = next(p for w, p in workflow_pods("projections", executor) if "dk-salaries" in w)
    message = admit(kube_api, "projections", pod)
    assert message is not None and 'violates PodSecurity "restricted:latest"' in message
    assert 'allowPrivilegeEscalation != false (containers "init", "wait"' in message
    assert 'unrestricted capabilities (containers "init", "wait"' in message


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_the_charts_own_pods_are_admitted(
    cluster: dict[str, Any], kube_api: KubeAPIServer, namespace: str
) -> None:
    objects = chart_objects(namespace)
    workloads = [*by_kind(objects, "StatefulSet").values(), *by_kind(objects, "Job").values()]
    assert {w["metadata"]["name"] for w in workloads} == {"minio", "projections-buckets"}
    for workload in workloads:
        assert admit(kube_api, namespace, template_pod(workload, namespace=namespace)) is None


# ---- Helm -------------------------------------------------------------------------------
def test_the_chart_upgrades_in_place_and_owns_its_objects(
    cluster: dict[str, Any], kube_api: KubeAPIServer
) -> None:
    run(
        helm_binary(),
        "upgrade",
        "--install",
        "projections",
        str(CHART),
        "-n",
        "team-b",
        "--no-hooks",
        env=cluster["env"],
    )
    accounts = api(kube_api).list_namespaced_service_account("team-b").items
    owned = {
        a.metadata.name for a in accounts if (a.metadata.annotations or {}).get("meta.helm.sh/release-name")
    }
    assert owned == {CONFIG.argo.service_account, CONFIG.argo.operator_service_account}


# ---- RBAC ---------------------------------------------------------------------------------
def can(
    kube_api: KubeAPIServer,
    account: str,
    verb: str,
    resource: str,
    *,
    name: str = "",
    namespace: str = "team-b",
    user: str | None = None,
) -> bool:
    """A SubjectAccessReview: may `account` of `namespace` (or `user`) do `verb` on `resource`
    (`group/plural`, `plural` for the core group, `plural/subresource` for pods/log)?"""
    from kubernetes import client

    group, plural, subresource = "", resource, ""
    if "." in resource.split("/")[0]:
        group, plural = resource.split("/")
    elif "/" in resource:
        plural, subresource = resource.split("/")
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user or f"system:serviceaccount:{namespace}:{account}",
            groups=["system:serviceaccounts"],
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace,
                verb=verb,
                group=group,
                resource=plural,
                subresource=subresource,
                name=name,
            ),
        )
    )
    answer = client.AuthorizationV1Api(kube_api.api_client()).create_subject_access_review(review)
    return bool(answer.status.allowed)


OPERATOR_MAY = [
    ("create", "argoproj.io/workflows"),
    ("get", "argoproj.io/workflows"),
    ("create", "argoproj.io/cronworkflows"),
    ("patch", "argoproj.io/cronworkflows"),
    ("get", "argoproj.io/workflowtemplates"),
    ("list", "argoproj.io/workflowtemplates"),
    ("get", "pods/log"),
    ("list", "pods"),
]
OPERATOR_MAY_NOT = [
    ("create", "pods"),
    ("delete", "secrets"),
    ("create", "rolebindings"),
    ("list", "secrets"),
]
PODS_MAY = [
    ("create", "argoproj.io/workflowtaskresults"),
    ("patch", "argoproj.io/workflowtaskresults"),
    ("create", "argoproj.io/workflows"),
    ("get", "argoproj.io/workflows"),
]
PODS_MAY_NOT = [
    ("get", "argoproj.io/cronworkflows"),
    ("create", "argoproj.io/cronworkflows"),
    ("delete", "argoproj.io/workflows"),
    ("get", "secrets"),
    ("create", "pods"),
]


def test_what_each_identity_may_do(cluster: dict[str, Any], kube_api: KubeAPIServer) -> None:
    operator, pods = CONFIG.argo.operator_service_account, CONFIG.argo.service_account
    assert [r for r in OPERATOR_MAY if not can(kube_api, operator, *r)] == []
    assert [r for r in OPERATOR_MAY_NOT if can(kube_api, operator, *r)] == []
    assert [r for r in PODS_MAY if not can(kube_api, pods, *r)] == []
    assert [r for r in PODS_MAY_NOT if can(kube_api, pods, *r)] == []
    # The Argo UI reads archived logs with the caller's identity: the store's Secret, only.
    assert can(kube_api, operator, "get", "secrets", name=CONFIG.argo.s3_secret)
    assert not can(kube_api, operator, "get", "secrets", name="something-else")
    # team-b's operator holds no rights in another namespace.
    outsider = f"system:serviceaccount:team-b:{operator}"
    assert not can(
        kube_api, operator, "create", "argoproj.io/workflows", namespace="projections", user=outsider
    )


def token_kubeconfig(
    kube_api: KubeAPIServer, cluster: dict[str, Any], account: str, namespace: str
) -> dict[str, str]:
    """A kubeconfig holding a token minted for `account` (the TokenRequest API)."""
    token = run(kubectl_binary(), "-n", namespace, "create", "token", account, env=cluster["env"]).strip()
    path = cluster["tmp"] / f"{namespace}-{account}.kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": kube_api.server,
                            "certificate-authority": str(kube_api.ca_file),
                        },
                    }
                ],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {"name": "c", "context": {"cluster": "c", "user": account, "namespace": namespace}}
                ],
                "current-context": "c",
            }
        )
    )
    return {"KUBECONFIG": str(path)}


def test_cron_apply_as_the_operator_creates_then_updates(
    cluster: dict[str, Any], kube_api: KubeAPIServer
) -> None:
    env = token_kubeconfig(kube_api, cluster, CONFIG.argo.operator_service_account, "team-b")
    first = run_pipeline_cli("cron", "apply", "--namespace", "team-b", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "CronWorkflow team-b/projections-daily" in first.stdout
    # helm installed it already; a second apply is an in-place update either way.
    second = run_pipeline_cli("cron", "apply", "--namespace", "team-b", env=env)
    assert second.returncode == 0 and "configured" in second.stdout, second.stderr
    from kubernetes import client

    stored = client.CustomObjectsApi(kube_api.api_client()).get_namespaced_custom_object(
        "argoproj.io", "v1alpha1", "team-b", "cronworkflows", argo.CRON_NAME
    )
    assert stored["spec"]["schedules"] == [CONFIG.argo.schedule]
    assert stored["spec"]["concurrencyPolicy"] == "Forbid"


def test_cron_apply_as_the_pods_identity_is_refused_clearly(
    cluster: dict[str, Any], kube_api: KubeAPIServer
) -> None:
    env = token_kubeconfig(kube_api, cluster, CONFIG.argo.service_account, "team-b")
    result = run_pipeline_cli("cron", "apply", "--namespace", "team-b", env=env)
    assert result.returncode == 2
    assert 'cannot get resource "cronworkflows"' in result.stderr, result.stderr


def test_cron_apply_without_credentials_is_a_clear_error(tmp_path: Path) -> None:
    result = run_pipeline_cli(
        "cron", "apply", env={"KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)}
    )
    assert result.returncode == 2 and "no Kubernetes credentials" in result.stderr
