"""A run says what it did and does what it says: fresh attempts on a rerun, one partition per
run id, outputs that never change once written, and a step that ends cleanly whatever the
store or the runner does around it."""

from __future__ import annotations

import dataclasses
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from steps.cli import main as steps_main
from steps.runtime import layout
from steps.runtime.errors import EXIT_NOT_RETRYABLE, EXIT_STORE_UNAVAILABLE, StoreUnavailable
from steps.runtime.manifest import list_manifests, read_manifest, record_of
from steps.runtime.partition import Partition
from steps.runtime.step import StepSpec, execute
from steps.runtime.store import Store, frame_to_parquet, open_store
from tests.helpers import latest_summary, run_steps_cli
from workflows.cli.range_exec import execute_range
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph
from workflows.dag.model import RangeRequest
from workflows.local.runner import LocalRunner
from workflows.local.warm import TIMED_OUT, WarmWorker, run_subprocess

DAY = "2024-11-18"
EARLY, LATE = "2024-11-18T20:00:00Z", "2024-11-18T23:30:00Z"
INGEST = ["ingest.injuries", "ingest.odds", "ingest.lineups", "ingest.roster", "dk.salaries"]


def step(store: str, asset: str, run_id: str, as_of: str = LATE, *extra: str):  # type: ignore[no-untyped-def]
    return run_steps_cli(
        asset, "--game-date", DAY, "--run-id", run_id, "--as-of", as_of, "--store", store, *extra
    )


def key(run_id: str, as_of: str = LATE) -> object:
    return Partition.build(game_date=DAY, run_as_of_ts=as_of, run_id=run_id).key


def ingest_all(store: str, run_id: str, as_of: str) -> None:
    schedule = run_steps_cli(
        "ingest.schedule", "--month", DAY[:7], "--run-id", run_id, "--as-of", as_of, "--store", store
    )
    assert schedule.returncode == 0, schedule.stderr
    for asset in INGEST:
        result = step(store, asset, run_id, as_of)
        assert result.returncode == 0, (asset, result.stderr)


def test_force_recomputes_into_a_fresh_attempt_and_keeps_the_old_one(seeded: str) -> None:
    store = open_store(seeded)
    assert step(seeded, "ingest.roster", "r1").returncode == 0
    first = read_manifest(store, "ingest.roster", key("r1"))
    reused = step(seeded, "ingest.roster", "r1")
    assert reused.returncode == 0 and "reused" in reused.stdout
    assert read_manifest(store, "ingest.roster", key("r1")) == first
    forced = step(seeded, "ingest.roster", "r1", LATE, "--force")
    assert forced.returncode == 0, forced.stderr
    second = read_manifest(store, "ingest.roster", key("r1"))
    assert second.attempt_id != first.attempt_id
    assert second.timing.started_at > first.timing.finished_at
    old, new = first.output("data"), second.output("data")
    assert old.path != new.path and f"attempt={second.attempt_id}/" in new.path
    assert store.get_bytes(old.path) == store.get_bytes(new.path)  # untouched, and deterministic
    attempts = [i.key for i in store.list(layout.manifest_scope_prefix("ingest.roster", key("r1")))]
    assert record_of(first)[0] in attempts and record_of(second)[0] in attempts


def test_an_attempt_never_overwrites_an_output(seeded: str) -> None:
    store = open_store(seeded)
    part = Partition.build(game_date=DAY, run_as_of_ts=LATE, run_id="r1")

    def work(ctx) -> None:  # type: ignore[no-untyped-def]
        ctx.write("data", pd.DataFrame({"x": [1]}))

    spec = StepSpec(asset="toy.immutable", run=work, description="toy")
    assert execute(spec, part, store, correlation_id="c", attempt_id="a1").status == "success"
    with pytest.raises(Exception, match="already exists"):
        execute(spec, part, store, correlation_id="c", attempt_id="a1")
    assert read_manifest(store, "toy.immutable", part.key).attempt_id == "a1"


def test_the_same_run_id_with_another_as_of_is_refused(seeded: str) -> None:
    store = open_store(seeded)
    assert step(seeded, "ingest.roster", "r1", LATE).returncode == 0
    before = read_manifest(store, "ingest.roster", key("r1"))
    again = step(seeded, "ingest.roster", "r1", EARLY)
    assert again.returncode == EXIT_NOT_RETRYABLE
    assert "already exists for another partition" in again.stderr and "run_as_of_ts" in again.stderr
    assert read_manifest(store, "ingest.roster", key("r1")) == before  # nothing overwritten


def test_a_worlds_collision_is_refused_and_keeps_the_first_run(seeded: str) -> None:
    store = open_store(seeded)
    assert step(seeded, "ingest.roster", "r1", LATE, "--worlds", "100").returncode == 0
    before = read_manifest(store, "ingest.roster", key("r1"))
    collision = step(seeded, "ingest.roster", "r1", LATE, "--worlds", "200")
    assert collision.returncode == EXIT_NOT_RETRYABLE
    assert "worlds 100, asked 200" in collision.stderr
    after = read_manifest(store, "ingest.roster", key("r1"))
    assert after == before and after.partition.worlds == 100
    forced = step(seeded, "ingest.roster", "r1", LATE, "--worlds", "200", "--force")
    assert forced.returncode == EXIT_NOT_RETRYABLE  # --force recomputes a run, never another one


def test_as_of_leakage_through_a_shared_run_id_is_refused(seeded: str) -> None:
    """Ingest as of late, then features under the same run id as of early: features would
    read data from after its as-of. It is refused, naming the upstream and both as-ofs."""
    ingest_all(seeded, "shared", LATE)
    features = step(seeded, "minutes.features", "shared", EARLY)
    assert features.returncode == EXIT_NOT_RETRYABLE
    assert "upstream ingest." in features.stderr and "one run id must name one partition" in features.stderr
    manifest = read_manifest(open_store(seeded), "minutes.features", key("shared", EARLY))
    assert manifest.status == "failed" and manifest.error.type == "IdentityMismatch"


def test_reads_verify_content_hashes(seeded: str) -> None:
    store = open_store(seeded)
    ingest_all(seeded, "r1", LATE)
    roster = read_manifest(store, "ingest.roster", key("r1")).output("data")
    frame = store.get_parquet(roster.path)
    store.put_bytes(roster.path, frame_to_parquet(frame.iloc[:-1]))  # tampered after the fact
    features = step(seeded, "minutes.features", "r1", LATE)
    assert features.returncode == EXIT_NOT_RETRYABLE
    assert "does not match its manifest" in features.stderr and roster.path in features.stderr


def test_a_corrupt_manifest_is_rewritten_by_a_rerun(seeded: str) -> None:
    store = open_store(seeded)
    assert step(seeded, "ingest.roster", "r1").returncode == 0
    first = read_manifest(store, "ingest.roster", key("r1"))
    store.put_bytes(record_of(first)[0], b'{"asset": "ingest.ro')
    rerun = step(seeded, "ingest.roster", "r1")
    assert rerun.returncode == 0, rerun.stderr
    assert "rerunning to rewrite it" in rerun.stderr
    assert read_manifest(store, "ingest.roster", key("r1")).status == "success"


class FailingStore(Store):
    """A store that stops answering for keys under one prefix."""

    def __init__(self, inner: Store, failing: str) -> None:
        self.inner, self.failing, self.url = inner, failing, inner.url

    def _check(self, key: str) -> None:
        if key.startswith(self.failing):
            raise StoreUnavailable(f"{self.failing}: connection reset (simulated)")

    def put_bytes(self, key: str, data: bytes) -> str:
        self._check(key)
        return self.inner.put_bytes(key, data)

    def put_if(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        self._check(key)
        return self.inner.put_if(key, data, if_match=if_match, if_none_match=if_none_match)

    def get_bytes(self, key: str) -> bytes:
        return self.inner.get_bytes(key)

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        return self.inner.get_with_etag(key)

    def stat(self, key: str):  # type: ignore[no-untyped-def]
        return self.inner.stat(key)

    def list(self, prefix: str):  # type: ignore[no-untyped-def]
        return self.inner.list(prefix)

    def list_dirs(self, prefix: str) -> list[str]:
        return self.inner.list_dirs(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


@pytest.mark.parametrize(("failing", "manifest_written"), [("events/", True), ("manifests/", False)])
def test_store_errors_exit_3_with_a_failed_manifest_where_the_store_allows(
    seeded: str, monkeypatch: pytest.MonkeyPatch, failing: str, manifest_written: bool
) -> None:
    inner = open_store(seeded)
    monkeypatch.setattr("steps.cli.open_store", lambda url: FailingStore(inner, failing))
    argv = ["ingest.roster", "--game-date", DAY, "--run-id", "r1", "--as-of", LATE, "--store", seeded]
    assert steps_main(argv) == EXIT_STORE_UNAVAILABLE
    manifest = read_manifest(inner, "ingest.roster", key("r1"))
    if manifest_written:  # the first event failed: the step did not run, and says why
        assert manifest.status == "failed" and manifest.error.type == "StoreUnavailable"
        assert manifest.error.retryable
    else:
        assert manifest is None


def test_a_step_killed_at_its_timeout_reports_it(seeded: str, tmp_path: Path) -> None:
    argv = ["python", "-m", "steps", "ingest.roster", "--game-date", DAY, "--run-id", "t"]
    argv += ["--as-of", LATE, "--store", seeded]
    env = {**__import__("os").environ, "PIPELINE_FAULTS": "ingest.roster@*=sleep:60"}
    out, err = tmp_path / "o", tmp_path / "e"
    began = time.monotonic()
    with WarmWorker() as warm:
        assert warm.run(argv, stdout=out, stderr=err, env=env, timeout=2) == TIMED_OUT
    assert run_subprocess(argv, stdout=out, stderr=err, env=env, timeout=2) == TIMED_OUT
    assert time.monotonic() - began < 40


def _slate_graph(**timeouts: int):  # type: ignore[no-untyped-def]
    graph = pipeline_graph().select(["ingest.schedule", *INGEST])
    specs = {
        a: dataclasses.replace(s, timeout_s=timeouts.get(a.replace(".", "_"), s.timeout_s))
        for a, s in graph.specs.items()
    }
    return dataclasses.replace(graph, specs=specs)


def test_a_hung_step_times_out_and_the_range_still_ends_with_a_summary(
    seeded: str, fast_config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_FAULTS", "ingest.odds@*=sleep:120")
    store = open_store(seeded)
    began = time.monotonic()
    _, summary = execute_range(
        RangeRequest(start=date(2024, 11, 18), end=date(2024, 11, 18)),
        store=store,
        graph=_slate_graph(ingest_odds=2),
        config=load_config(fast_config),
        kind="backfill",
        show_progress=False,
    )
    assert time.monotonic() - began < 100
    assert summary is not None and summary.failed
    [group] = [g for g in summary.top_errors if "ingest.odds" in g.signature]
    assert "timeout of 2s" in group.example_message
    assert latest_summary(store)["partitions"]["failed"] == 1
    assert (
        read_manifest(store, "ingest.roster", key(summary.partition_outcomes[0].run_id)).status == "success"
    )


def test_an_infrastructure_failure_fails_one_step_not_the_range(
    seeded: str, fast_config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    launch = LocalRunner._launch

    def broken(self, argv, log_base, timeout):  # type: ignore[no-untyped-def]
        if "ingest.lineups" in argv:
            raise ConnectionResetError("the worker went away (simulated)")
        return launch(self, argv, log_base, timeout)

    monkeypatch.setattr(LocalRunner, "_launch", broken)
    store = open_store(seeded)
    _, summary = execute_range(
        RangeRequest(start=date(2024, 11, 18), end=date(2024, 11, 18)),
        store=store,
        graph=_slate_graph(),
        config=load_config(fast_config),
        kind="backfill",
        show_progress=False,
    )
    assert summary is not None
    [group] = summary.top_errors
    assert group.signature.startswith("ingest.lineups") and "worker went away" in group.example_message
    written = latest_summary(store)
    assert written["steps"]["ingest.roster"]["ran"] == 1 and written["steps"]["ingest.lineups"]["failed"] == 1


def test_the_summary_tells_reused_from_recomputed(seeded: str, fast_config: str) -> None:
    store = open_store(seeded)
    day = RangeRequest(start=date(2024, 11, 18), end=date(2024, 11, 18))
    options = {
        "store": store,
        "graph": _slate_graph(),
        "config": load_config(fast_config),
        "kind": "backfill",
    }
    execute_range(day, **options, show_progress=False)  # type: ignore[arg-type]
    # Each attempt's stdout is kept; a stream it left empty (stderr, on success) is not.
    logs = [(i.key, i.size, layout.parse_log_key(i.key)) for i in store.list(layout.LOGS)]
    assert logs and all(size > 0 and parsed is not None and parsed[1] == "stdout" for _, size, parsed in logs)
    before = {(m.asset, m.key): m for m in list_manifests(store, "manifests/")}
    _, resumed = execute_range(day, **options, show_progress=False)  # type: ignore[arg-type]
    assert resumed is not None and resumed.partitions["reused"] == 1
    assert all(s.ran == 0 for s in resumed.steps.values())
    _, recomputed = execute_range(
        dataclasses.replace(day, resume=False),
        **options,
        show_progress=False,  # type: ignore[arg-type]
    )
    assert recomputed is not None and recomputed.partitions["reused"] == 0
    assert all(s.ran == 1 and s.reused == 0 for s in recomputed.steps.values())
    for k, old in before.items():
        new = read_manifest(store, *k)
        assert new is not None
        assert new.attempt_id != old.attempt_id, k
        assert new.timing.started_at > old.timing.finished_at, k
        assert [o.content_hash for o in new.outputs] == [o.content_hash for o in old.outputs], k


def test_a_failed_rerun_of_a_promoted_run_leaves_current_as_it_was(seeded: str) -> None:
    from steps.runtime.inputs import resolve_one
    from steps.runtime.pointer import current_run, pointed_manifest, promote
    from steps.runtime.shapes import Input

    store = open_store(seeded)
    assert step(seeded, "ingest.roster", "r1").returncode == 0
    promoted = read_manifest(store, "ingest.roster", key("r1"))
    scope = layout.pointer_scope("ingest.roster", key("r1"))
    promote(store, scope, asset="ingest.roster", key=key("r1"), reason="test")
    failed = run_steps_cli(
        "ingest.roster",
        "--game-date",
        DAY,
        "--run-id",
        "r1",
        "--as-of",
        LATE,
        "--store",
        seeded,
        "--force",
        env={"PIPELINE_FAULTS": f"ingest.roster@{DAY}=raise"},
    )
    assert failed.returncode != 0
    assert read_manifest(store, "ingest.roster", key("r1")).status == "failed"  # the latest attempt
    pointer = current_run(store, scope)
    assert pointer is not None and pointer.attempt_id == promoted.attempt_id
    assert pointed_manifest(store, pointer) == promoted
    later = Partition.build(game_date=DAY, run_as_of_ts="2024-11-19T01:00:00Z", run_id="r2")
    assert resolve_one(store, Input("ingest.roster"), later, later.key) == promoted
