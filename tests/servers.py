"""Real servers for the tests: each starts on 127.0.0.1, a free port, a temp dir, and stops."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "pipeline-test"
SECRET_KEY = "pipeline-test-secret"  # a throwaway credential for a loopback test server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def minio_binary() -> str:
    found = os.environ.get("PIPELINE_MINIO_BIN") or shutil.which("minio")
    if not found or not Path(found).exists():
        raise RuntimeError("no MinIO server binary: run the tests through `make test`, which builds it")
    return found


@dataclass
class MinioServer:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "PIPELINE_S3_ENDPOINT": self.endpoint,
            "PIPELINE_S3_ACCESS_KEY": ACCESS_KEY,
            "PIPELINE_S3_SECRET_KEY": SECRET_KEY,
        }

    def start(self) -> MinioServer:
        env = dict(os.environ)
        env.update(
            MINIO_ROOT_USER=ACCESS_KEY,
            MINIO_ROOT_PASSWORD=SECRET_KEY,
            MINIO_BROWSER="off",
            MINIO_UPDATE="off",
            CI="true",
        )
        console = free_port()
        self.proc = subprocess.Popen(
            [
                minio_binary(),
                "server",
                str(self.data_dir),
                "--address",
                f"127.0.0.1:{self.port}",
                "--console-address",
                f"127.0.0.1:{console}",
                "--quiet",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"minio exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/minio/health/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("minio did not become ready in 60s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
