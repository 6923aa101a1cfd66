"""The one-line reason a failed process leaves for Kubernetes to show (the termination message).

Argo shows a failed pod's termination message as the node's message, and a failed exit
handler's as the workflow's (docs/argo-rules.md §7.3). Outside a pod there is no such file
and nothing is written.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

# Kubernetes keeps at most 4 KiB of a termination message.
LIMIT_BYTES = 4000


def termination_log() -> Path:
    return Path(os.environ.get("PIPELINE_TERMINATION_LOG", "/dev/termination-log"))


def report_termination(message: str) -> None:
    """Leave `message` for the pod's status, when running in a container that has the file."""
    path = termination_log()
    if not path.exists():
        return
    data = message.encode()[:LIMIT_BYTES]
    # The message is a courtesy; the manifest and the exit code carry the outcome.
    with contextlib.suppress(OSError):
        path.write_bytes(data)
