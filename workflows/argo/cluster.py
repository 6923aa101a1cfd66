"""How the operator's machine reaches the cluster: the Argo Server (submit) and the Kubernetes
API (the daily CronWorkflow), with settings from flags or the environment.

Argo Server settings use the Argo CLI's own variable names where it has one: `ARGO_SERVER`
(host:port or URL), `ARGO_TOKEN` (a ServiceAccount token, with or without `Bearer `),
`ARGO_NAMESPACE`, `ARGO_INSECURE_SKIP_VERIFY`; plus `ARGO_CA_FILE`, a CA bundle for a server
whose certificate you installed. The official argo-server serves HTTPS (docs/argo-rules.md).
The Kubernetes API is reached through `KUBECONFIG` (or the in-cluster account).
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict

from steps.runtime.errors import PipelineError

FIELD_MANAGER = "pipeline"
TRUE_WORDS = ("1", "true", "yes", "on")


class ClusterError(PipelineError):
    """The cluster could not be reached, or it refused the request."""


class ArgoServerSettings(BaseModel):
    """Where the Argo Server is and how to authenticate to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    token: str | None
    verify: bool | str  # True, False (skip verification) or a CA bundle path

    @classmethod
    def resolve(
        cls, server: str | None, token: str | None, insecure: bool | None, ca_file: str | None
    ) -> ArgoServerSettings:
        host = server or os.environ.get("ARGO_SERVER")
        if not host:
            raise ClusterError(
                "no Argo Server: pass --argo-server or set ARGO_SERVER (e.g. localhost:2746 while "
                "`make ui` port-forwards it); see docs/runbooks/cluster.md"
            )
        url = host if "://" in host else f"https://{host}"
        bearer = token or os.environ.get("ARGO_TOKEN") or None
        skip = (
            insecure
            if insecure is not None
            else os.environ.get("ARGO_INSECURE_SKIP_VERIFY", "").lower() in TRUE_WORDS
        )
        ca = ca_file or os.environ.get("ARGO_CA_FILE") or None
        if ca and not os.path.isfile(ca):
            raise ClusterError(f"ARGO_CA_FILE {ca} does not exist")
        verify: bool | str = False if skip else (ca or True)
        return cls(
            url=url.rstrip("/"), token=bearer.removeprefix("Bearer ") if bearer else None, verify=verify
        )


def workflows_service(settings: ArgoServerSettings, namespace: str) -> Any:
    """A Hera client for the Argo Server."""
    from hera.workflows import WorkflowsService

    # Hera hands `verify_ssl` to requests, which also takes a CA bundle path.
    return WorkflowsService(
        host=settings.url,
        token=settings.token,
        namespace=namespace,
        verify_ssl=settings.verify,  # type: ignore[arg-type]
    )


def kube_api_client() -> Any:
    """A Kubernetes API client from KUBECONFIG (or ~/.kube/config), else the in-cluster account."""
    from kubernetes import client, config

    try:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    except Exception as kube_exc:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            raise ClusterError(
                f"no Kubernetes credentials: set KUBECONFIG (for k3s: /etc/rancher/k3s/k3s.yaml) ({kube_exc})"
            ) from None
    return client.ApiClient()


def apply_custom_object(api_client: Any, obj: dict[str, Any]) -> str:
    """Server-side apply of one namespaced custom object; returns "created" or "configured"."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    group, version = obj["apiVersion"].split("/")
    plural = obj["kind"].lower() + "s"
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    api = client.CustomObjectsApi(api_client)
    try:
        try:
            api.get_namespaced_custom_object(group, version, namespace, plural, name)
            existed = True
        except ApiException as exc:
            if exc.status != 404:
                raise
            existed = False
        api.patch_namespaced_custom_object(
            group,
            version,
            namespace,
            plural,
            name,
            obj,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )
    except ApiException as exc:
        raise ClusterError(
            f"the Kubernetes API refused {obj['kind']} {namespace}/{name}: {_reason(exc)}"
        ) from None
    except (OSError, HTTPError) as exc:
        raise ClusterError(f"the Kubernetes API did not answer: {exc}") from None
    return "configured" if existed else "created"


def _reason(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body)["message"])
    except (TypeError, ValueError, KeyError):
        return f"{exc.status} {exc.reason}"
