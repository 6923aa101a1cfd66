"""`pipeline verify`: a promoted partition recomputes to its manifests' hashes, and a changed
output is named with its step."""

from __future__ import annotations

from steps.runtime import layout
from steps.runtime.manifest import read_manifest
from steps.runtime.store import frame_to_parquet, open_store
from tests.helpers import run_pipeline_cli, slate_pointer

DAY = "2024-11-18"


def test_verify_a_clean_partition_then_a_tampered_one(seeded: str) -> None:
    ran = run_pipeline_cli("run", "--start", DAY, "--store", seeded)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    store = open_store(seeded)
    clean = run_pipeline_cli("verify", "--game-date", DAY, "--store", seeded)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "verified:" in clean.stdout and "finalize.unified" in clean.stdout
    assert not list(store.list("scratch/"))  # the recomputation leaves nothing behind

    pointer = slate_pointer(store, DAY)
    unified = read_manifest(store, "finalize.unified", pointer.key).output("data")
    frame = store.get_parquet(unified.path)
    frame.loc[0, "fp_mean"] = frame.loc[0, "fp_mean"] + 1.0
    store.put_bytes(unified.path, frame_to_parquet(frame))  # changed behind the manifest's back
    tampered = run_pipeline_cli("verify", "--game-date", DAY, "--store", seeded)
    assert tampered.returncode == 1
    [row] = [line for line in tampered.stdout.splitlines() if "stored-differs" in line]
    assert "finalize.unified" in row and "data" in row
    assert "1 of" in tampered.stderr and "differ from their manifests" in tampered.stderr

    one = run_pipeline_cli(
        "verify", "--game-date", DAY, "--asset", "minutes.score", "--store", seeded, "--keep-scratch"
    )
    assert one.returncode == 0, one.stdout + one.stderr
    assert "minutes.score" in one.stdout and "finalize.unified" not in one.stdout
    assert list(store.list("scratch/")) and not list(store.list(layout.scratch_prefix("x")))


def test_verify_refuses_a_date_that_was_never_promoted(seeded: str) -> None:
    result = run_pipeline_cli("verify", "--game-date", "2024-11-17", "--store", seeded)
    assert result.returncode == 2 and "nothing promoted for 2024-11-17" in result.stderr
