"""Which runs of an upstream asset one partition of a step reads, by its input's mapping
(steps/runtime/shapes.py). Nothing from after the consumer's `run_as_of_ts` is ever chosen,
unless the input says it reads settled results (`after_as_of`).
"""

from __future__ import annotations

from collections.abc import Callable

from steps.runtime import layout
from steps.runtime.errors import IdentityMismatch, ManifestError, MissingInput, ObjectNotFound
from steps.runtime.manifest import (
    Manifest,
    latest_records,
    list_manifests,
    read_manifest,
    read_output_frame,
    read_record,
)
from steps.runtime.partition import Partition, PartitionKey, month_of, season_start
from steps.runtime.pointer import current_run, pointed_manifest
from steps.runtime.shapes import DRAFT_GROUP_SOURCE, Input, Shape
from steps.runtime.store import Store


def mapped_key(consumer: Partition, producer: Shape, item: Input) -> PartitionKey:
    """The producer partition a `same` or `month` input names (for a run-scoped producer, in
    the consumer's run: the run it reads when both run in one DAG execution)."""
    if item.mapping == "month":
        return PartitionKey(month=month_of(consumer.game_date), run_id=consumer.run_id)
    return PartitionKey(
        month=consumer.month if "month" in producer.keys else None,
        game_date=consumer.game_date if "game_date" in producer.keys else None,
        draft_group_id=consumer.draft_group_id if "draft_group" in producer.keys else None,
        run_id=consumer.run_id if producer.run_scoped else None,
    )


def resolve_input(store: Store, item: Input, producer: Shape, consumer: Partition) -> list[Manifest]:
    """The success manifests `consumer` reads for `item`: one for `same` and `month`, one per
    draft group for `draft_groups`, one per settled date for `window`."""
    if item.mapping == "window":
        return window_manifests(store, item.asset, consumer)
    if item.mapping == "draft_groups":
        return [
            resolve_one(store, item, consumer, consumer.key.model_copy(update={"draft_group_id": group}))
            for group in draft_groups(store, consumer)
        ]
    return [resolve_one(store, item, consumer, mapped_key(consumer, producer, item))]


def resolve_one(store: Store, item: Input, consumer: Partition, key: PartitionKey) -> Manifest:
    """1. the named partition itself (the same run, or a partition that is not run-scoped);
    2. the partition's current pointer, if it is not from after the consumer's as-of;
    3. its latest success run at or before the consumer's as-of."""
    in_time: Callable[[Manifest], bool] = (
        (lambda m: True)
        if item.after_as_of
        else (lambda m: m.partition.run_as_of_ts <= consumer.run_as_of_ts)
    )
    same = read_manifest(store, item.asset, key)
    if same is not None and key.run_id is not None:
        same_run_identity(same, consumer)
    if same is not None and same.status == "success" and (key.run_id is not None or in_time(same)):
        return same
    if key.run_id is not None:
        pointer = current_run(store, layout.pointer_scope(item.asset, key))
        if pointer is not None and (item.after_as_of or pointer.run_as_of_ts <= consumer.run_as_of_ts):
            found = pointed_manifest(store, pointer)
            if found is not None and found.status == "success":
                return found
        candidates = [
            m
            for m in list_manifests(store, layout.manifest_scope_prefix(item.asset, key))
            if m.status == "success" and m.key.scope() == key.scope()
        ]
        candidates = [m for m in candidates if in_time(m)]
        if candidates:
            return max(candidates, key=lambda m: (m.partition.run_as_of_ts, m.partition.run_id or ""))
    where = key.scope().describe() or key.segments()
    raise MissingInput(
        f"upstream {item.asset} has no success manifest for {where} at or before "
        f"{consumer.as_of_iso()} (run {consumer.run_id}); run it first, e.g. "
        f"`pipeline run --start {consumer.game_date} --end {consumer.game_date} --steps {item.asset}`"
    )


def same_run_identity(producer: Manifest, consumer: Partition) -> None:
    """One run id is one run: the same as-of, profile and worlds in every step. A manifest
    under the consumer's run id made otherwise (a step run by hand with another `--as-of`)
    would leak data from after the consumer's as-of, or mix two runs: refuse it."""
    made, wanted = producer.partition, consumer
    differ = [
        f"{name} {getattr(made, name)!r} (consumer: {getattr(wanted, name)!r})"
        for name in ("run_as_of_ts", "profile", "worlds")
        if getattr(made, name) is not None and getattr(made, name) != getattr(wanted, name)
    ]
    if differ:
        raise IdentityMismatch(
            f"upstream {producer.asset} run {made.run_id} was made with {', '.join(differ)}; "
            "one run id must name one partition. Run the range again under a new run id "
            "(pipeline run/submit derive it from the as-of, profile and worlds)"
        )


def draft_groups(store: Store, consumer: Partition) -> list[str]:
    """The draft groups of a date's run, as its fan-out source listed them."""
    asset, output, column = DRAFT_GROUP_SOURCE
    source = resolve_one(
        store, Input(asset), consumer, PartitionKey(game_date=consumer.game_date, run_id=consumer.run_id)
    )
    frame = read_output_frame(store, source.output(output))
    return sorted(str(g) for g in frame[column].dropna().unique())


def window_manifests(store: Store, asset: str, consumer: Partition) -> list[Manifest]:
    """Every settled partition of `asset` in the consumer's season before its date, settled by
    its as-of (one listing of the season's days so far, then one read per date)."""
    first = layout.manifest_day_prefix(season_start(consumer.game_date))
    listing = store.list_after(layout.MANIFESTS, first, layout.manifest_day_prefix(consumer.game_date))
    found = []
    for listed in latest_records(listing).values():
        run = listed.run
        if run is None or run.asset != asset or run.key.game_date is None or run.key.run_id is not None:
            continue
        if listed.vouched and listed.name.status != "success":
            continue
        try:
            manifest = read_record(store, listed.key)
        except (ManifestError, ObjectNotFound):
            continue
        if manifest.status == "success" and manifest.partition.run_as_of_ts <= consumer.run_as_of_ts:
            found.append(manifest)
    return sorted(found, key=lambda m: m.partition.game_date)
