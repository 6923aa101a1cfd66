from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from steps.runtime.store import Store, open_store
from tests.kube import kube_api  # noqa: F401  (a session fixture: the real Kubernetes API server)
from tests.servers import MinioServer, free_port

_bucket_ids = itertools.count(1)


@pytest.fixture(scope="session")
def minio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    server = MinioServer(data_dir=tmp_path_factory.mktemp("minio-data"), port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def minio_env(minio_server: MinioServer, monkeypatch: pytest.MonkeyPatch) -> MinioServer:
    for name, value in minio_server.env().items():
        monkeypatch.setenv(name, value)
    return minio_server


def fresh_bucket_url() -> str:
    return f"s3://test-{os.getpid()}-{next(_bucket_ids)}"


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """The same test against both backends: a directory and a real MinIO bucket."""
    if request.param == "file":
        return open_store(f"file://{tmp_path / 'store'}", create=True)
    request.getfixturevalue("minio_env")
    return open_store(fresh_bucket_url(), create=True)


SEED_START = date(2024, 11, 1)
SEED_END = date(2024, 11, 22)


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory store with three weeks of seeded history, built once and copied per test."""
    from synthetic.seed import seed_history

    root = tmp_path_factory.mktemp("seeded") / "store"
    seed_history(open_store(f"file://{root}", create=True), 2024, seed=7, start=SEED_START, end=SEED_END)
    return root


@pytest.fixture
def seeded(seeded_template: Path, tmp_path: Path) -> str:
    """A private copy of the seeded directory store; returns its URL."""
    import shutil

    root = tmp_path / "store"
    shutil.copytree(seeded_template, root)
    return f"file://{root}"


@pytest.fixture
def seeded_s3(minio_env) -> str:
    """A fresh MinIO bucket holding the same seeded history."""
    from synthetic.seed import seed_history

    url = fresh_bucket_url()
    seed_history(open_store(url, create=True), 2024, seed=7, start=SEED_START, end=SEED_END)
    return url


FAST_CONFIG = """
runner:
  max_parallel: 2
  retries: {limit: 1, backoff_seconds: 0, factor: 1, max_backoff_seconds: 0}
limits:
  source.schedule: 2
  source.injuries: 1
  source.odds: 1
  source.lineups: 1
  source.roster: 2
  source.salaries: 1
  source.boxscores: 2
  source.tracking: 2
  stage.train: 1
  stage.sim: 1
  stage.promote: 1
"""


@pytest.fixture
def fast_config(tmp_path: Path) -> str:
    """Pipeline config with no retry backoff, so injected failures are quick."""
    path = tmp_path / "pipeline.yaml"
    path.write_text(FAST_CONFIG)
    return str(path)
