"""What ran: code version, git sha, host, python. Recorded in every manifest."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from pathlib import Path

import steps


@functools.cache
def git_sha() -> str | None:
    # The image bakes the sha in at build time; a checkout asks git once per process.
    if sha := os.environ.get("PIPELINE_GIT_SHA"):
        return sha
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(steps.__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def hostname() -> str:
    return socket.gethostname()


def python_version() -> str:
    return platform.python_version()
