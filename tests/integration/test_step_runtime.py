"""Running a step: manifests written last, failures recorded, crashes leave nothing trusted."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pandas as pd
import pytest

from steps.cli import NOT_RETRYABLE_MARK
from steps.runtime import layout
from steps.runtime.errors import ManifestError, MissingInput
from steps.runtime.events import read_events
from steps.runtime.inputs import resolve_one
from steps.runtime.manifest import partition_identity, read_manifest
from steps.runtime.partition import Partition
from steps.runtime.shapes import Input
from steps.runtime.step import StepSpec, execute
from steps.runtime.store import Store, open_store
from tests.helpers import run_steps_cli

DAY = "2024-11-18"
AS_OF = "2024-11-18T23:00:00Z"


def part(run_id: str = "t1") -> Partition:
    return Partition.build(game_date=DAY, run_as_of_ts=AS_OF, run_id=run_id)


def test_success_manifest_records_outputs_checks_and_events(store: Store) -> None:
    def work(ctx) -> None:
        ctx.write("data", pd.DataFrame({"player_id": ["a", "b"], "x": [1.0, None]}), unique=("player_id",))
        ctx.check("rows", True, "2 rows")
        ctx.metric("rows", 2)

    spec = StepSpec(asset="toy.step", run=work, description="toy")
    manifest = execute(spec, part(), store, correlation_id="corr-1", orchestrator_run_id="orch-1")
    assert manifest.status == "success"
    stored = read_manifest(store, "toy.step", part().key)
    assert stored == manifest
    out = stored.outputs[0]
    # Each attempt writes under its own prefix, so no rerun ever overwrites an earlier one.
    assert out.path == f"runs/toy.step/game_date=2024-11-18/run=t1/attempt={manifest.attempt_id}/data.parquet"
    assert out.row_count == 2 and out.content_hash.startswith("sha256:")
    assert out.null_counts == {"player_id": 0, "x": 1} and out.unique_checks == {"player_id": True}
    assert stored.environment.orchestrator_run_id == "orch-1" and stored.correlation_id == "corr-1"
    kinds = [(e.kind, e.status) for e in read_events(store) if e.correlation_id == "corr-1"]
    assert sorted(kinds, key=str) == sorted([("step_started", None), ("step_finished", "success")], key=str)


def test_exception_gives_failed_manifest(store: Store) -> None:
    def work(ctx) -> None:
        raise ValueError("the odds feed returned garbage")

    manifest = execute(
        StepSpec(asset="toy.fail", run=work, description="t"), part(), store, correlation_id="c"
    )
    assert manifest.status == "failed"
    assert manifest.error.type == "ValueError"
    assert "garbage" in manifest.error.message
    assert "Traceback" in manifest.error.traceback_snippet
    with pytest.raises(MissingInput, match="no success manifest"):
        resolve_one(store, Input("toy.fail"), part(), part().key)


def test_critical_check_fails_the_step(store: Store) -> None:
    def work(ctx) -> None:
        ctx.check("coverage", False, "70% < 90%")
        ctx.check("advice", False, "only a warning", severity="warn")

    manifest = execute(
        StepSpec(asset="toy.check", run=work, description="t"), part(), store, correlation_id="c"
    )
    assert manifest.status == "failed" and manifest.error.type == "CheckFailed"
    assert "coverage: 70% < 90%" in manifest.error.message and "advice" not in manifest.error.message


def test_corrupt_edited_and_invalid_manifests_are_clear_errors(store: Store) -> None:
    def record(body: bytes, ended: int) -> None:
        name = layout.RecordName(
            written=layout.record_written(datetime(2024, 11, 18, 23, ended, tzinfo=UTC)),
            status="success",
            identity=partition_identity(part()),
            digest=hashlib.md5(body, usedforsecurity=False).hexdigest(),
        )
        store.put_bytes(layout.record_key("toy.x", part().key, f"a{ended}", name), body)

    record(b"{not json", 1)
    with pytest.raises(ManifestError, match="corrupt"):
        read_manifest(store, "toy.x", part().key)
    record(b'{"manifest_version": "v1", "asset": "toy.x"}', 2)
    with pytest.raises(ManifestError, match="does not validate"):
        read_manifest(store, "toy.x", part().key)
    record(b"{}", 3)
    latest = next(
        i.key for i in store.list(layout.manifest_run_prefix("toy.x", part().key)) if "/attempt=a3," in i.key
    )
    store.put_bytes(latest, b'{"edited": true}')  # bytes other than those the name was given for
    with pytest.raises(ManifestError, match="was changed after it was written"):
        read_manifest(store, "toy.x", part().key)


def _args(store_url: str, asset: str = "ingest.roster", run_id: str = "t1") -> list[str]:
    return [asset, "--game-date", DAY, "--run-id", run_id, "--as-of", AS_OF, "--store", store_url]


def test_cli_runs_a_step_and_skips_when_done(seeded: str) -> None:
    first = run_steps_cli(*_args(seeded))
    assert first.returncode == 0, first.stderr
    assert "success" in first.stdout
    again = run_steps_cli(*_args(seeded))
    assert again.returncode == 0 and "reused" in again.stdout


def test_sigkill_mid_write_publishes_nothing_and_rerun_succeeds(seeded: str) -> None:
    store = open_store(seeded)
    env = {"PIPELINE_FAULTS": "ingest.roster@*=sleep:60"}
    import os

    full_env = dict(os.environ, **env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "steps", *_args(seeded), "--attempt-id", "killed"], env=full_env
    )
    out_key = "runs/ingest.roster/game_date=2024-11-18/run=t1/attempt=killed/data.parquet"
    deadline = time.monotonic() + 60
    while not store.exists(out_key) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.exists(out_key), "the step never wrote its output"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_manifest(store, "ingest.roster", part().key) is None
    with pytest.raises(MissingInput):
        resolve_one(store, Input("ingest.roster"), part(), part().key)
    rerun = run_steps_cli(*_args(seeded))
    assert rerun.returncode == 0, rerun.stderr
    done = read_manifest(store, "ingest.roster", part().key)
    assert done.status == "success" and done.attempt_id != "killed"
    assert "attempt=killed/" not in done.outputs[0].path  # the killed attempt's file is never named


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--game-date": "2024/11/18"}, "not an ISO date"),
        ({"--as-of": "2024-11-18T23:00:00"}, "naive"),
        ({"--run-id": "../escape"}, "path separator"),
        ({"--run-id": "a b"}, "whitespace"),
        ({"--store": "ftp://x"}, "unknown store scheme"),
        ({"--store": "file:///definitely/not/here"}, "does not exist"),
        ({"asset": "nope.step"}, "unknown step 'nope.step'"),
    ],
)
def test_cli_bad_input_table(seeded: str, change: dict[str, str], message: str) -> None:
    args = _args(seeded)
    for flag, value in change.items():
        if flag == "asset":
            args[0] = value
        else:
            args[args.index(flag) + 1] = value
    result = run_steps_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not list(open_store(seeded).list("manifests/"))


def test_cli_unreachable_minio(seeded: str) -> None:
    from tests.servers import free_port

    env = {
        "PIPELINE_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "PIPELINE_S3_ACCESS_KEY": "x",
        "PIPELINE_S3_SECRET_KEY": "y",
        "PIPELINE_S3_RETRIES": "0",
    }
    result = run_steps_cli(*_args("s3://bucket"), env=env)
    assert result.returncode == 3 and "cannot reach S3 endpoint" in result.stderr


def _attempt_records(store: Store, asset: str) -> list[str]:
    listed = store.list(layout.manifest_run_prefix(asset, part().key))
    return sorted(i.key for i in listed if layout.parse_record_key(i.key) is not None)


def test_a_deterministic_failure_is_not_run_again_beside_the_same_outputs_dir(seeded: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A packed pod's emissary reruns a container on any non-zero exit, beside the same outputs
    directory (docs/argo-rules.md §9.1): after an exit 2 the rerun ends at once, so a packed step
    makes one attempt, as the local runner and the unpacked retryStrategy do."""
    store = open_store(seeded)
    outputs = tmp_path / "outputs" / "minutes-score"
    first = run_steps_cli(*_args(seeded, "minutes.score"), "--outputs-dir", str(outputs))
    assert first.returncode == 2 and (outputs / NOT_RETRYABLE_MARK).exists()
    status_before = (outputs / "status").read_text()
    [record] = _attempt_records(store, "minutes.score")
    again = run_steps_cli(*_args(seeded, "minutes.score"), "--outputs-dir", str(outputs))
    assert again.returncode == 2 and "not run again" in again.stderr
    assert _attempt_records(store, "minutes.score") == [record]  # no new attempt, no new manifest
    assert (outputs / "status").read_text() == status_before == "failed"
    # A new pod (a fresh directory) or the local runner (none) runs the step again.
    fresh = run_steps_cli(*_args(seeded, "minutes.score"), "--outputs-dir", str(tmp_path / "new-pod"))
    assert fresh.returncode == 2 and "not run again" not in fresh.stderr
    assert len(_attempt_records(store, "minutes.score")) == 2


def test_a_failure_a_retry_may_cure_leaves_no_mark(seeded: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    outputs = tmp_path / "outputs"
    result = run_steps_cli(
        *_args(seeded), "--outputs-dir", str(outputs), env={"PIPELINE_FAULTS": "ingest.roster@*=raise"}
    )
    assert result.returncode == 1, result.stderr
    assert (outputs / "status").read_text() == "failed"
    assert not (outputs / NOT_RETRYABLE_MARK).exists()


def test_a_deterministic_failure_exits_2_with_a_failed_manifest(seeded: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A missing input fails the same way on every attempt: exit 2, which neither runner retries;
    its reason is left as the pod's termination message (the Argo node's message)."""
    termination = tmp_path / "termination-log"
    termination.write_text("")
    result = run_steps_cli(
        *_args(seeded, "minutes.score"), env={"PIPELINE_TERMINATION_LOG": str(termination)}
    )
    assert result.returncode == 2
    assert termination.read_text().startswith(f"minutes.score {DAY}: MissingInput: upstream minutes.features")
    assert "upstream minutes.features has no success manifest" in result.stderr
    manifest = read_manifest(open_store(seeded), "minutes.score", part().key)
    assert manifest.status == "failed" and manifest.error.type == "MissingInput"
    assert manifest.error.retryable is False


def test_an_unexpected_failure_exits_1_and_is_retryable(seeded: str) -> None:
    faults = {"PIPELINE_FAULTS": f"ingest.roster@{DAY}=raise"}
    result = run_steps_cli(*_args(seeded, "ingest.roster"), env=faults)
    assert result.returncode == 1, result.stderr
    manifest = read_manifest(open_store(seeded), "ingest.roster", part().key)
    assert manifest.error.type == "InjectedFault" and manifest.error.retryable is True


@pytest.mark.parametrize("error", ["MissingInput", "CorruptObject", "ContractBroken", "CheckFailed"])
def test_deterministic_errors_are_not_retryable(error: str) -> None:
    from steps.runtime import errors

    assert issubclass(getattr(errors, error), errors.Deterministic)
    assert not issubclass(errors.StoreUnavailable, errors.Deterministic)


def test_an_undeclared_skip_fails(store: Store) -> None:
    from steps.runtime.step import NotDue

    def run(ctx: object) -> None:
        raise NotDue("nothing to do")

    spec = StepSpec(asset="t.undeclared", run=run, description="skips without saying so")
    manifest = execute(spec, part(), store, correlation_id="c")
    assert manifest.status == "failed" and manifest.error.type == "UndeclaredSkip"
    assert "not_due" in manifest.error.message
    declared = execute(
        StepSpec(asset="t.declared", run=run, description="may skip", may_skip=True),
        part(),
        store,
        correlation_id="c",
    )
    assert declared.status == "not_due"


@pytest.mark.parametrize(("raised", "status"), [("NotDue", "not_due"), ("NotPromoted", "not_promoted")])
def test_a_step_that_stops_short_says_how_and_why(store: Store, raised: str, status: str) -> None:
    """The manifest status names the way it stopped, and a check of that name says why (what
    the local runner shows as the reason); nothing is written."""
    from steps.runtime import step

    def run(ctx: object) -> None:
        raise getattr(step, raised)("the reason")

    spec = StepSpec(asset="t.short", run=run, description="stops short", may_skip=True)
    manifest = execute(spec, part(), store, correlation_id="c")
    assert manifest.status == status and manifest.error is None and manifest.outputs == []
    assert [(c.name, c.passed, c.detail) for c in manifest.checks] == [(status, True, "the reason")]
    assert read_manifest(store, "t.short", part().key) == manifest


def _write_as_before_d21(store: Store, asset: str, reason: str) -> None:
    """A manifest as written before D21: status `skipped`, its reason in a check named
    `not_due`, whichever way the step had stopped; its record's name says `skipped` too."""
    from steps.runtime.manifest import latest_records, partition_identity
    from steps.runtime.step import NotDue

    def run(ctx: object) -> None:
        raise NotDue(reason)

    manifest = execute(
        StepSpec(asset=asset, run=run, description="t", may_skip=True), part(), store, correlation_id="c"
    )
    body = manifest.model_dump(mode="json")
    body["status"] = "skipped"
    body["checks"] = [{**c, "name": "not_due"} for c in body["checks"]]
    data = json.dumps(body).encode()
    run_prefix = layout.manifest_run_prefix(asset, part().key)
    for listed in list(store.list(run_prefix)):
        store.delete(listed.key)
    name = layout.RecordName(
        written=layout.record_written(manifest.timing.finished_at),
        status="skipped",
        identity=partition_identity(manifest.partition),
        digest=hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )
    store.put_bytes(layout.record_key(asset, part().key, manifest.attempt_id or "a", name), data)
    assert latest_records(store.list(run_prefix))[run_prefix].name.status == "skipped"


def test_manifests_written_before_d21_still_read(store: Store) -> None:
    from workflows.dag.model import PlannedStep
    from workflows.dag.resume import decide, observe

    _write_as_before_d21(store, "t.labels", "box scores for 2024-11-18 settle at 2024-11-19T17:00:00Z")
    _write_as_before_d21(store, "t.promote", "not promoted: a newer run is current")
    labels = read_manifest(store, "t.labels", part().key)
    promote = read_manifest(store, "t.promote", part().key)
    assert labels is not None and labels.status == "not_due"
    assert [c.name for c in labels.checks] == ["not_due"]
    assert promote is not None and promote.status == "not_promoted"
    assert [(c.name, c.detail) for c in promote.checks] == [
        ("not_promoted", "not promoted: a newer run is current")
    ]
    # Resume reads each (its name's old word cannot say which) and runs it again, saying why.
    nodes = [PlannedStep(a, part(), "run", "", None) for a in ("t.labels", "t.promote")]
    seen = observe(store, nodes)
    reasons = [decide(n.asset, seen[n.id], resume=True) for n in nodes]
    assert [(r.action, r.reason) for r in reasons] == [
        ("run", "previously not due"),
        ("run", "previously not promoted"),
    ]
