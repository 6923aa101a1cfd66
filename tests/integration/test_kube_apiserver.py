"""The real kube-apiserver fixture works: ready, v1.34, PodSecurity and RBAC enforce, kubectl talks to it."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube import KubeAPIServer, kubectl_binary, kustomize_binary


def fresh_namespace(api: client.ApiClient, labels: dict[str, str] | None = None) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    namespace = client.V1Namespace.model_validate({"metadata": {"name": name, "labels": labels or {}}})
    client.CoreV1Api(api).create_namespace(namespace)
    return name


def pod(name: str, container_security: dict[str, Any]) -> client.V1Pod:
    return client.V1Pod.model_validate(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [
                    {"name": "app", "image": "registry.invalid/app:1", "securityContext": container_security}
                ],
            },
        }
    )


def service_account(name: str) -> client.V1ServiceAccount:
    return client.V1ServiceAccount.model_validate({"metadata": {"name": name}})


def message(error: ApiException) -> str:
    return str(json.loads(error.body or "{}").get("message", ""))


def test_ready_and_version(kube_api: KubeAPIServer) -> None:
    request = urllib.request.Request(
        f"{kube_api.server}/readyz?verbose", headers={"Authorization": f"Bearer {kube_api.token}"}
    )
    context = ssl.create_default_context(cafile=str(kube_api.ca_file))
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        assert response.status == 200
        assert "readyz check passed" in response.read().decode()
    with kube_api.api_client() as api:
        version = client.VersionApi(api).get_code()
    assert (version.major, version.minor) == ("1", "34")
    assert version.git_version.startswith("v1.34.")


def test_pod_security_restricted_is_enforced(kube_api: KubeAPIServer) -> None:
    with kube_api.api_client() as api:
        core = client.CoreV1Api(api)
        ns = fresh_namespace(api, {"pod-security.kubernetes.io/enforce": "restricted"})
        compliant = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}

        # No controller-manager runs, so nothing creates the `default` ServiceAccount: the
        # ServiceAccount admission plugin refuses pods until the test makes it.
        with pytest.raises(ApiException) as no_sa:
            core.create_namespaced_pod(ns, pod("early", compliant), dry_run="All")
        assert 'serviceaccount "default" not found' in message(no_sa.value)
        core.create_namespaced_service_account(ns, service_account("default"))

        escalating = {"capabilities": {"drop": ["ALL"]}}
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod(ns, pod("escalating", escalating), dry_run="All")
        assert refused.value.status == 403
        assert 'violates PodSecurity "restricted:latest"' in message(refused.value)
        assert "allowPrivilegeEscalation != false" in message(refused.value)

        accepted = core.create_namespaced_pod(ns, pod("compliant", compliant), dry_run="All")
        assert accepted.spec is not None
        assert accepted.spec.service_account_name == "default"  # ServiceAccount admission ran
        assert core.list_namespaced_pod(ns).items == []  # dry run: nothing stored


def test_rbac_subject_access_review(kube_api: KubeAPIServer) -> None:
    with kube_api.api_client() as api:
        ns = fresh_namespace(api)
        client.CoreV1Api(api).create_namespaced_service_account(ns, service_account("reader"))
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_namespaced_role(
            ns,
            client.V1Role.model_validate(
                {
                    "metadata": {"name": "pod-reader"},
                    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
                }
            ),
        )
        rbac.create_namespaced_role_binding(
            ns,
            client.V1RoleBinding.model_validate(
                {
                    "metadata": {"name": "reader-reads-pods"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": "pod-reader",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
                }
            ),
        )
        authz = client.AuthorizationV1Api(api)

        def allowed(verb: str) -> bool:
            review = client.V1SubjectAccessReview.model_validate(
                {
                    "spec": {
                        "user": f"system:serviceaccount:{ns}:reader",
                        "groups": [
                            "system:serviceaccounts",
                            f"system:serviceaccounts:{ns}",
                            "system:authenticated",
                        ],
                        "resourceAttributes": {"namespace": ns, "verb": verb, "resource": "pods"},
                    }
                }
            )
            status = authz.create_subject_access_review(review).status
            return bool(status and status.allowed)

        deadline = time.monotonic() + 10  # the RBAC authorizer reads bindings through an informer
        while not allowed("get") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert allowed("get")
        assert not allowed("delete")


def test_built_kubectl_and_kustomize(kube_api: KubeAPIServer, tmp_path: Path) -> None:
    kubeconfig = kube_api.kubeconfig(tmp_path / "kubeconfig")
    namespaces = subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(kubeconfig), "get", "ns", "-o", "name"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {"namespace/default", "namespace/kube-system"} <= set(namespaces)

    env = {**os.environ, **kube_api.env()}  # KUBECONFIG
    version = json.loads(
        subprocess.run(
            [kubectl_binary(), "version", "-o", "json"], env=env, capture_output=True, text=True, check=True
        ).stdout
    )
    assert version["clientVersion"]["gitVersion"].startswith("v1.34.")
    assert version["serverVersion"]["gitVersion"] == version["clientVersion"]["gitVersion"]

    kustomize = subprocess.run([kustomize_binary(), "version"], capture_output=True, text=True, check=True)
    assert kustomize.stdout.startswith("v5.")
