"""A real Kubernetes API server for the tests: etcd plus kube-apiserver (built from source by `make`).

Both start on 127.0.0.1, free ports and a temp dir, and stop by PID. There is no controller-manager,
scheduler or kubelet: objects are admitted (RBAC, PodSecurity, ServiceAccount, ...) and stored, never run.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.servers import free_port

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / ".tools" / "bin"
ADMIN_USER = "pipeline-admin"
ADMIN_TOKEN = "pipeline-test-admin-token"  # a throwaway credential for a loopback test server
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


def _binary(env_var: str, name: str, *fallbacks: Path) -> str:
    configured = os.environ.get(env_var)
    candidates = [Path(configured)] if configured else [TOOLS / name, *fallbacks]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RuntimeError(f"no {name} binary: run the tests through `make test`, which builds it")


def kube_apiserver_binary() -> str:
    return _binary("PIPELINE_KUBE_APISERVER_BIN", "kube-apiserver")


def etcd_binary() -> str:
    return _binary("PIPELINE_ETCD_BIN", "etcd", Path("/usr/bin/etcd"))


def kubectl_binary() -> str:
    return _binary("PIPELINE_KUBECTL_BIN", "kubectl")


def kustomize_binary() -> str:
    return _binary("PIPELINE_KUSTOMIZE_BIN", "kustomize")


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: kill it if the test process dies without calling stop().

    SIGKILL, not SIGTERM: a terminated kube-apiserver whose etcd is already gone hangs in its graceful
    shutdown (it waits to remove its endpoint lease from etcd)."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class KubeAPIServer:
    data_dir: Path
    port: int
    etcd_port: int = field(default_factory=free_port)
    etcd_proc: subprocess.Popen[bytes] | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The self-signed serving cert (leaf then its CA) that kube-apiserver writes to --cert-dir."""
        return self.data_dir / "certs" / "apiserver.crt"

    @property
    def token(self) -> str:
        return ADMIN_TOKEN

    def kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig for the admin (group system:masters) to `path` and return it."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": ADMIN_USER, "user": {"token": ADMIN_TOKEN}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": ADMIN_USER}}],
            "current-context": "test",
        }
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML: every client reads it
        return path

    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig(self.data_dir / "kubeconfig"))}

    def api_client(self) -> ApiClient:
        from kubernetes import client

        config = client.Configuration()
        config.host = self.server
        config.api_key = {"authorization": ADMIN_TOKEN}
        config.api_key_prefix = {"authorization": "Bearer"}
        config.ssl_ca_cert = str(self.ca_file)
        return client.ApiClient(config)

    def start(self) -> KubeAPIServer:
        try:
            self._start_etcd()
            self._start_apiserver()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_etcd(self) -> None:
        peer = f"http://127.0.0.1:{free_port()}"
        client_url = f"http://127.0.0.1:{self.etcd_port}"
        log = self.data_dir / "etcd.log"
        with log.open("wb") as out:
            self.etcd_proc = subprocess.Popen(
                [
                    etcd_binary(),
                    "--name=test",
                    f"--data-dir={self.data_dir / 'etcd'}",
                    f"--listen-client-urls={client_url}",
                    f"--advertise-client-urls={client_url}",
                    f"--listen-peer-urls={peer}",
                    f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster=test={peer}",
                    "--logger=zap",
                    "--log-outputs=stderr",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self._wait("etcd", self.etcd_proc, log, f"{client_url}/health", 30, None)

    def _start_apiserver(self) -> None:
        sa_key = self.data_dir / "sa.key"
        subprocess.run(
            [
                "openssl",
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                str(sa_key),
            ],
            check=True,
            capture_output=True,
        )
        tokens = self.data_dir / "tokens.csv"
        tokens.write_text(f'{ADMIN_TOKEN},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
        log = self.data_dir / "kube-apiserver.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    kube_apiserver_binary(),
                    f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={self.port}",
                    f"--cert-dir={self.data_dir / 'certs'}",
                    f"--token-auth-file={tokens}",
                    "--authorization-mode=Node,RBAC",
                    f"--service-account-issuer={SA_ISSUER}",
                    f"--service-account-key-file={sa_key}",
                    f"--service-account-signing-key-file={sa_key}",
                    "--service-cluster-ip-range=10.96.0.0/16",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self._wait("kube-apiserver", self.proc, log, f"{self.server}/readyz", 60, ADMIN_TOKEN)

    def _wait(
        self, name: str, proc: subprocess.Popen[bytes], log: Path, url: str, seconds: float, token: str | None
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{_log_tail(log)}")
            try:
                context = ssl.create_default_context(cafile=str(self.ca_file)) if token else None
                request = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(request, timeout=2, context=context) as response:
                    if response.status == 200:
                        return
            except OSError:  # not listening yet, no cert yet, or 500 while post-start hooks run
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{name} did not become ready in {seconds:.0f}s:\n{_log_tail(log)}")

    def stop(self) -> None:
        _stop(self.proc)
        _stop(self.etcd_proc)
        self.proc = self.etcd_proc = None


@pytest.fixture(scope="session")
def kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPIServer]:
    server = KubeAPIServer(data_dir=tmp_path_factory.mktemp("kube"), port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()
