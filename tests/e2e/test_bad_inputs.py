"""Bad input through the CLI: a clear message, a non-zero exit, and nothing promoted."""

from __future__ import annotations

from datetime import date

import pytest

from steps.runtime import layout
from steps.runtime.store import Store, open_store
from tests.helpers import latest_summary, run_pipeline_cli
from tests.servers import free_port

DAY = "2024-11-15"
D = date(2024, 11, 15)


def _drop(store: Store, source: str) -> None:
    for info in list(store.list(layout.landing_date_prefix(source, D))):
        store.delete(info.key)


def _corrupt(store: Store, source: str) -> None:
    for info in store.list(layout.landing_date_prefix(source, D)):
        store.put_bytes(info.key, b"PAR1 this is not parquet")


def _break_schema(store: Store, source: str) -> None:
    for info in store.list(layout.landing_date_prefix(source, D)):
        frame = store.get_parquet(info.key)
        frame["salary"] = 999_999
        store.put_parquet(info.key, frame)


ARGUMENT_CASES = [
    (["--start", "15/11/2024"], "not an ISO date"),
    (["--start", "2024-02-30"], "not a real date"),
    (["--start", DAY, "--end", "2024-11-14"], "is before --start"),
    (["--start", DAY, "--end", "2024-11"], "not an ISO date"),
    (["--start", DAY, "--as-of-mode", "custom"], "needs --as-of-ts"),
    (["--start", DAY, "--as-of-mode", "custom", "--as-of-ts", "2024-11-15 20:00"], "naive"),
    (["--start", DAY, "--as-of-mode", "custom", "--as-of-ts", "tonight"], "not an ISO-8601 timestamp"),
    (["--start", DAY, "--as-of-ts", "2024-11-15T20:00:00Z"], "only used with --as-of-mode custom"),
    (["--start", DAY, "--as-of-mode", "noon"], "--as-of-mode must be"),
    (["--start", DAY, "--steps", "minutes.magic"], "unknown step 'minutes.magic'"),
    (["--start", DAY, "--steps", ","], "selected nothing"),
    (["--start", DAY, "--worlds", "0"], "--worlds must be positive"),
    (["--start", DAY, "--profile", "../x"], "path separator"),
    (["--start", DAY, "--profile", "reckless"], "unknown profile 'reckless'"),
    (["--start", DAY, "--max-parallel", "0"], "Invalid value for '--max-parallel'"),
    (["--start", DAY, "--catch-up-days", "-1"], "Invalid value for '--catch-up-days'"),
    (["--start", DAY, "--runner", "threads"], "--runner must be"),
    (["--start", DAY, "--store", "ftp://host/x"], "unknown store scheme"),
    (["--start", DAY, "--store", "file:///no/such/dir"], "does not exist"),
    (["--start", DAY, "--store", "s3://key:secret@bucket"], "not in the store URL"),
    (["--start", DAY, "--config", "/no/such/config.yaml"], "does not exist"),
]


@pytest.mark.parametrize(("args", "message"), ARGUMENT_CASES, ids=[m for _, m in ARGUMENT_CASES])
def test_bad_arguments(seeded: str, args: list[str], message: str) -> None:
    store = open_store(seeded)
    before = sorted(i.key for i in store.list(""))
    extra = [] if "--store" in args else ["--store", seeded]
    result = run_pipeline_cli("run", *args, *extra)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr, result.stderr
    assert sorted(i.key for i in store.list("")) == before  # nothing written at all


def test_invalid_config(seeded: str, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("limits: {stage.sim: 0}\n")
    result = run_pipeline_cli("run", "--start", DAY, "--store", seeded, "--config", str(bad))
    assert result.returncode == 2 and "must allow at least 1" in result.stderr
    bad.write_text("runner: [not, a, mapping\n")
    result = run_pipeline_cli("run", "--start", DAY, "--store", seeded, "--config", str(bad))
    assert result.returncode == 2 and "not valid YAML" in result.stderr


def test_unreachable_minio(seeded: str) -> None:
    env = {
        "PIPELINE_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "PIPELINE_S3_ACCESS_KEY": "a",
        "PIPELINE_S3_SECRET_KEY": "b",
        "PIPELINE_S3_RETRIES": "0",
    }
    result = run_pipeline_cli("run", "--start", DAY, "--store", "s3://projections", env=env)
    assert result.returncode == 2 and "cannot reach S3 endpoint" in result.stderr


DATA_CASES = [
    (_corrupt, "roster", "ingest.roster", "CorruptObject", "is not readable parquet"),
    (_break_schema, "salaries", "dk.salaries", "ContractBroken", "column 'salary' failed in_range"),
    (_drop, "lineups", "ingest.lineups", "MissingInput", "no lineups snapshot for 2024-11-15"),
    (_drop, "injuries", "ingest.injuries", "MissingInput", "Remediation: the injury report"),
    (_drop, "salaries", "dk.salaries", "MissingInput", "no salaries snapshot"),
]


@pytest.mark.parametrize(
    ("damage", "source", "asset", "error_type", "message"),
    DATA_CASES,
    ids=[f"{c[0].__name__}-{c[1]}" for c in DATA_CASES],
)
def test_bad_data(seeded: str, damage, source: str, asset: str, error_type: str, message: str) -> None:  # type: ignore[no-untyped-def]
    store = open_store(seeded)
    damage(store, source)
    result = run_pipeline_cli("run", "--start", DAY, "--store", seeded)
    assert result.returncode == 1, result.stdout + result.stderr
    [group] = latest_summary(store)["top_errors"]
    assert group["signature"].startswith(f"{asset}: {error_type}")
    assert message in group["example_message"]
    assert f"{asset}: {error_type}" in result.stdout
    assert not list(store.list("current/")), "nothing may be promoted"
