"""The Helm chart as a cluster would get it: `helm template` with the real Helm, per namespace."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import Any

import yaml

from tests.strict import REPO

CHART = REPO / "charts" / "projections"


def helm_binary() -> str:
    found = os.environ.get("PIPELINE_HELM_BIN") or shutil.which("helm")
    if not found:
        raise RuntimeError("no helm binary: run the tests through `make test`, which builds it")
    return found


@functools.cache
def _template(namespace: str, sets: tuple[str, ...]) -> str:
    argv = [helm_binary(), "template", "projections", str(CHART), "--namespace", namespace]
    for item in sets:
        argv += ["--set", item]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def chart_objects(namespace: str = "projections", *sets: str) -> list[dict[str, Any]]:
    """Every object the chart installs into `namespace` (fresh copies: callers may mutate)."""
    return [d for d in yaml.safe_load_all(_template(namespace, tuple(sets))) if d]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}
