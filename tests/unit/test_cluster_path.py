"""The user's cluster path (`make cluster-up`, `image`, `deploy`, `ui`) runs the official
commands and names; `make -n` shows what each would run without touching a cluster."""

from __future__ import annotations

import subprocess

from tests.strict import REPO


def dry(*targets: str, **variables: str) -> str:
    argv = ["make", "-n", "--no-print-directory", *targets, *(f"{k}={v}" for k, v in variables.items())]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_ui_forwards_the_official_argo_server_service() -> None:
    assert "kubectl -n argo port-forward svc/argo-server 2746:2746" in dry("ui", KUBECTL="kubectl")


def test_argo_is_installed_from_its_manifests_with_the_overlay_server_side() -> None:
    out = dry("argo-install", KUBECTL="kubectl")
    assert "kubectl apply --server-side --force-conflicts -k k8s/argo/online" in out
    assert "rollout status deployment/workflow-controller" in out and "deployment/argo-server" in out
    assert "-k k8s/argo/airgapped" in dry("argo-install", KUBECTL="kubectl", ARGO_INSTALL="airgapped")


def test_cluster_up_pins_k3s_and_uses_its_installer_or_the_cluster_already_there() -> None:
    out = dry("cluster-up", KUBECTL="kubectl")
    assert "curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.34" in out
    assert "--write-kubeconfig-mode 644" in out and "get --raw /readyz" in out
    airgapped = dry("cluster-up", KUBECTL="kubectl", K3S_INSTALL_SCRIPT="/opt/k3s/install.sh")
    assert "INSTALL_K3S_SKIP_DOWNLOAD=true" in airgapped and "/opt/k3s/install.sh" in airgapped


def test_image_is_tagged_by_git_sha_and_imported_into_k3s() -> None:
    sha = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout
    out = dry("image", CONTAINER="docker")
    assert f"-t projections-step:{sha.strip()}" in out
    assert "k3s ctr images import -" in out


def test_deploy_checks_drift_labels_the_namespace_and_installs_the_chart_with_helm() -> None:
    out = dry("deploy", KUBECTL="kubectl", NAMESPACE="team-b", IMAGE="projections-step:abc")
    assert "workflows.cli render --check" in out
    assert "kubectl label namespace team-b pod-security.kubernetes.io/enforce=restricted" in out
    assert "upgrade --install projections charts/projections --namespace team-b" in out
    assert "--set image=projections-step:abc" in out
