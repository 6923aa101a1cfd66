"""No credentials in the repository or in anything it renders; keys cannot be escaped."""

from __future__ import annotations

import random
import re
import string
import subprocess

import pytest

from steps.runtime import layout
from steps.runtime.errors import InvalidPartition
from steps.runtime.partition import Partition
from tests.strict import REPO
from workflows.argo.render import dump, generated_objects, rendered_files
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph

SECRET_PATTERNS = [
    (re.compile(r"AKIA[0-9A-Z]{16}"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile("minio" + "admin"), "MinIO's default credentials"),  # split so this file passes
    (
        re.compile(r"(?i)(password|secret_?key|access_?key|token)\s*[:=]\s*['\"]?[A-Za-z0-9/+]{12,}"),
        "a literal credential",
    ),
    (re.compile(r"(?i)authorization:\s*bearer\s+[A-Za-z0-9._-]{12,}"), "a bearer token"),
]
# The throwaway credential of the loopback MinIO the tests start, and this file's own probes.
ALLOWED = {
    ("tests/servers.py", "pipeline-test-secret"),
    ("tests/integration/test_security.py", "Abcdefghijkl12345"),
    ("tests/integration/test_security.py", "AKIAABCDEFGHIJKLMNOP"),
}


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [f for f in out if not f.endswith((".gz", ".png"))]


def scan(name: str, text: str) -> list[str]:
    found = []
    for pattern, what in SECRET_PATTERNS:
        for match in pattern.finditer(text):
            if not any(name == allowed_file and secret in match.group(0) for allowed_file, secret in ALLOWED):
                found.append(f"{name}: {what}: {match.group(0)[:40]}")
    return found


def test_scanner_catches_what_it_should() -> None:
    assert scan("x.yaml", "secretkey: Abcdefghijkl12345")
    assert scan("x.env", "AWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP")
    assert not scan("x.yaml", "secretKeyRef:\n  name: projections-minio\n  key: secretkey")


def test_no_credentials_in_committed_files() -> None:
    problems = [
        p
        for f in tracked_files()
        if (REPO / f).is_file()
        for p in scan(f, (REPO / f).read_text(errors="replace"))
    ]
    assert problems == []


def test_no_credentials_in_rendered_objects() -> None:
    cfg = load_config()
    problems = [
        p for name, obj in generated_objects(pipeline_graph(), cfg).items() for p in scan(name, dump(obj))
    ]
    problems += [
        p for path, text in rendered_files(pipeline_graph(), cfg).items() for p in scan(str(path), text)
    ]
    assert problems == []


EVIL = [
    "..",
    "../x",
    "a/b",
    "a\\b",
    "/abs",
    "x/../../y",
    "a b",
    "\t",
    "",
    " ",
    "a\x00b",
    "=",
    "run=x",
    "a..b",
    "%2e%2e",
    "~",
    "*",
]


@pytest.mark.parametrize("value", EVIL)
def test_evil_partition_values_are_refused(value: str) -> None:
    for field in ("run_id", "draft_group_id", "profile"):
        kwargs = {
            "game_date": "2025-01-15",
            "run_as_of_ts": "2025-01-15T22:00:00Z",
            "run_id": "r1",
            field: value,
        }
        with pytest.raises(InvalidPartition):
            Partition.build(**kwargs)


def test_random_values_never_escape_their_prefix() -> None:
    rng = random.Random(7)
    alphabet = string.printable + "é/\\."
    accepted = 0
    for _ in range(3000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        try:
            p = Partition.build(game_date="2025-01-15", run_as_of_ts="2025-01-15T22:00:00Z", run_id=value)
        except InvalidPartition:
            continue
        accepted += 1
        prefix = layout.run_prefix("sim.run", p.key)
        assert prefix.startswith("runs/sim.run/game_date=2025-01-15/run=") and prefix.count("/") == 4
        assert ".." not in prefix and "\\" not in prefix
    assert accepted > 100
