"""`pipeline gc`: keeps every run a pointer, recent pointer history or a kept reader names;
deletes unreferenced old runs and superseded attempts; dry run by default; refuses mid-range."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from steps.runtime import layout
from steps.runtime.events import emit
from steps.runtime.manifest import list_manifests, read_manifest, read_output, record_of
from steps.runtime.partition import Partition
from steps.runtime.pointer import current_run, list_history, promote
from steps.runtime.step import StepSpec, execute
from steps.runtime.store import Store
from steps.runtime.timefmt import utc_now
from tests.helpers import run_pipeline_cli
from workflows.observe.gc import RangeInFlight, delete_candidates, plan_gc

DAY = "2024-11-18"
UP, FINAL = "toy.up", "toy.final"


def part(run_id: str, as_of: str) -> Partition:
    return Partition.build(game_date=DAY, run_as_of_ts=as_of, run_id=run_id)


def _up(ctx) -> None:
    ctx.write("data", pd.DataFrame({"x": [1, 2, 3], "run": [ctx.partition.run_id] * 3}))


def _final(ctx) -> None:
    frame = ctx.upstream(UP)
    ctx.write("data", frame.assign(y=frame["x"] * 2))


def _broken(ctx) -> None:
    raise RuntimeError("a forced rerun that failed")


UP_SPEC = StepSpec(asset=UP, run=_up, description="toy upstream")
FINAL_SPEC = StepSpec(asset=FINAL, run=_final, description="toy final", consumes=(UP,))
BROKEN_FINAL = StepSpec(asset=FINAL, run=_broken, description="toy final, failing", consumes=(UP,))

A = part("run-a", "2024-11-18T20:00:00Z")
B = part("run-b", "2024-11-18T23:00:00Z")
C = part("run-c", "2024-11-18T21:00:00Z")
D = part("run-d", "2024-11-18T22:00:00Z")
SCOPE = layout.pointer_scope(FINAL, A.key)


def old(n: int) -> str:
    """An attempt id from long ago (attempt ids start with their start time)."""
    return f"20240101T0{n}0000Z-00000{n}"


def build(store: Store) -> dict[str, str]:
    """A: up + final, promoted, then superseded by B (history). B: final only, reading A's up,
    current, with a later failed `--force` attempt. C: an old unpromoted run nothing reads.
    D: a recent run of up with an older superseded attempt."""
    up_a = execute(UP_SPEC, A, store, correlation_id="a", attempt_id=old(1))
    execute(FINAL_SPEC, A, store, correlation_id="a", attempt_id=old(2))
    promote(store, SCOPE, asset=FINAL, key=A.key, reason="a")
    final_b = execute(FINAL_SPEC, B, store, correlation_id="b", attempt_id=old(3))
    assert final_b.inputs[0].run_id == "run-a"  # B read A's upstream (no up of its own)
    pointer_b = promote(store, SCOPE, asset=FINAL, key=B.key, reason="b")
    assert pointer_b.attempt_id == old(3)
    forced = execute(BROKEN_FINAL, B, store, correlation_id="b2", attempt_id=old(4))
    assert forced.status == "failed" and read_manifest(store, FINAL, B.key).attempt_id == old(4)
    execute(UP_SPEC, C, store, correlation_id="c", attempt_id=old(5))
    d1 = execute(UP_SPEC, D, store, correlation_id="d", attempt_id=old(6))
    d2 = execute(UP_SPEC, D, store, correlation_id="d2")  # now: the run is recent
    return {
        "up_a": up_a.outputs[0].path,
        "final_b": final_b.outputs[0].path,
        "d1": d1.outputs[0].path,
        "d2": d2.outputs[0].path,
        "final_b_record": record_of(final_b)[0],
        "forced_record": record_of(forced)[0],
    }


def _all_keys(store: Store) -> set[str]:
    return {i.key for root in ("runs/", "manifests/") for i in store.list(root)}


def _candidates(plan) -> set[tuple[str, str | None, tuple[str, ...]]]:
    return {(c.asset, c.run_id, tuple(c.attempts)) for c in plan.candidates}


def _assert_every_success_manifest_readable(store: Store) -> int:
    """What `pipeline verify` and every reader rely on: each success manifest's outputs exist
    and hash to what it recorded, and so does every asset input it names."""
    read = 0
    for manifest in list_manifests(store, "manifests/"):
        if manifest.status != "success":
            continue
        for record in manifest.outputs:
            read_output(store, record)
            read += 1
        for item in manifest.inputs:
            if item.kind == "asset":
                assert store.exists(item.path), (
                    f"{manifest.asset} {manifest.key.run_id} input {item.path} is gone"
                )
    pointer = current_run(store, SCOPE)
    assert pointer is not None and store.exists(pointer.manifest_path)
    return read


def test_gc_keeps_referenced_and_deletes_garbage(store: Store) -> None:
    paths = build(store)
    before = _all_keys(store)

    # In the window (now): A is kept by its pointer history version; only C (old, nothing
    # reads it) and D's superseded first attempt are garbage.
    plan = plan_gc(store)
    assert _candidates(plan) == {(UP, "run-c", (old(5),)), (UP, "run-d", (old(6),))}
    assert _all_keys(store) == before  # planning (the dry run) deletes nothing

    # Sixty days on, A's pointer version is out of the window: A's own final goes, but A's
    # up stays (B, which is current, read it), and so does the attempt B's pointer names
    # although a later failed --force attempt is the run's latest.
    later = plan_gc(store, now=utc_now() + timedelta(days=60))
    found = _candidates(later)
    assert (FINAL, "run-a", (old(2),)) in found
    assert not {c for c in found if c[1] == "run-b" or (c[0], c[1]) == (UP, "run-a")}

    deleted = delete_candidates(store, plan)
    assert deleted == plan.total_objects > 0
    after = _all_keys(store)
    assert not any("/run=run-c/" in k for k in after)
    assert not any(old(6) in k for k in after) and store.exists(paths["d2"])
    assert store.exists(paths["up_a"]) and store.exists(paths["final_b"])
    assert read_manifest(store, FINAL, A.key) is not None  # kept by history in the window
    assert [v.run_id for v in list_history(store, SCOPE)] == ["run-a", "run-b"]
    assert _assert_every_success_manifest_readable(store) >= 3

    # A second pass finds nothing more to do.
    assert plan_gc(store).candidates == []

    delete_candidates(store, later)
    assert read_manifest(store, FINAL, A.key) is None
    assert store.exists(paths["up_a"]) and store.exists(paths["final_b"])
    assert store.exists(paths["final_b_record"]) and store.exists(paths["forced_record"])
    _assert_every_success_manifest_readable(store)


def test_gc_refuses_while_a_range_is_in_flight(store: Store) -> None:
    build(store)
    emit(store, "range_started", correlation_id="bf-1", detail={"kind": "backfill"})
    with pytest.raises(RangeInFlight, match="bf-1"):
        plan_gc(store)
    emit(store, "range_finished", correlation_id="bf-1", status="success")
    plan_gc(store)

    store.put_json(f"{layout.backfill_prefix('bf-2')}plan.json", {"created_at": utc_now().isoformat()})
    with pytest.raises(RangeInFlight, match="bf-2"):
        plan_gc(store)
    store.put_json(f"{layout.backfill_prefix('bf-2')}summary.json", {})
    assert len(plan_gc(store).candidates) == 2


def test_gc_cli_dry_run_then_delete_and_refusal(store: Store) -> None:
    build(store)
    before = _all_keys(store)
    dry = run_pipeline_cli("gc", "--store", store.url, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout and "run-c" in dry.stdout and "2 prefixes" in dry.stdout
    assert _all_keys(store) == before

    emit(store, "range_started", correlation_id="bf-3")
    refused = run_pipeline_cli("gc", "--store", store.url, "--delete", timeout=120)
    assert refused.returncode == 2 and "in flight" in refused.stderr
    assert _all_keys(store) == before
    emit(store, "range_finished", correlation_id="bf-3", status="success")

    done = run_pipeline_cli("gc", "--store", store.url, "--delete", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "deleted" in done.stdout
    assert not any("/run=run-c/" in k for k in _all_keys(store))
    _assert_every_success_manifest_readable(store)
