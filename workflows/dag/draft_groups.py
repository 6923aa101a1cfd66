"""A slate's draft groups: read from the `dk.salaries` attempt that listed them, and the nodes each fans out to."""

from __future__ import annotations

import contextlib
import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from steps.runtime import layout
from steps.runtime.errors import CorruptObject, ManifestError, ObjectNotFound
from steps.runtime.manifest import Listed, read_manifest
from steps.runtime.partition import Partition, PartitionKey
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.store import Store
from workflows.dag.model import Plan, PlannedStep, link
from workflows.dag.resume import decide_nodes


def read_column(store: Store, key: str, column: str) -> pd.Series:
    """One column of a parquet object. The planner reads a column of two objects per slate (its
    schedule's tips, its draft groups); building whole frames costs several times as much."""
    data = store.get_bytes(key)
    try:
        return pq.read_table(io.BytesIO(data), columns=[column]).column(0).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise CorruptObject(f"{store.describe(key)} is not readable parquet: {exc}") from None


def groups_from_store(store: Store, key: PartitionKey, listed: Listed | None = None) -> list[str] | None:
    """The draft groups `dk.salaries` listed for a slate's run, if it succeeded. With its
    latest record as a listing showed it, and vouched for, the groups are in the record's name
    (or else in the output of the attempt it names), and nothing else is read; without, the
    latest manifest is read."""
    asset, output, column = DRAFT_GROUP_SOURCE
    if listed is not None and not groups_need_read(listed):
        return sorted(listed.name.groups) if listed.name.status == "success" else None
    if listed is not None and listed.vouched:  # a success whose name had no room for them
        with contextlib.suppress(ObjectNotFound, ValueError):
            found = read_column(store, layout.output_key(asset, key, listed.attempt, output), column)
            return sorted(str(g) for g in found.dropna().unique())
    try:
        manifest = read_manifest(store, asset, key)
    except ManifestError:
        return None
    if manifest is None or manifest.status != "success":
        return None
    groups = read_column(store, manifest.output(output).path, column)
    return sorted(str(g) for g in groups.dropna().unique())


def groups_need_read(listed: Listed) -> bool:
    """Whether a slate's latest `dk.salaries` record leaves its draft groups to be read: its
    name tells them when the listing vouches for it and it either failed or names them."""
    return not (listed.vouched and (listed.name.status != "success" or listed.name.groups))


def expand_draft_groups(
    plan: Plan,
    store: Store,
    key: PartitionKey,
    groups: list[str],
    *,
    resume: bool,
    only: set[str] | None = None,
) -> list[PlannedStep]:
    """Add a slate's draft-group step partitions, once its draft groups are known, and make
    the slate's fan-in steps wait for them. Returns the new nodes, decided."""
    slate = next(s.partition for s in plan.partitions if s.partition.key == key)
    added = add_draft_group_nodes(plan, slate, groups, only=only, waiting=fan_in_nodes(plan).get(key, []))
    decide_nodes(store, added, resume=resume)
    return added


def fan_in_nodes(plan: Plan) -> dict[PartitionKey, list[PlannedStep]]:
    """The steps that wait for a slate's draft groups, by slate."""
    out: dict[PartitionKey, list[PlannedStep]] = {}
    for node in plan.nodes.values():
        if node.fan_in is not None:
            out.setdefault(node.fan_in, []).append(node)
    return out


def add_draft_group_nodes(
    plan: Plan,
    slate: Partition,
    groups: list[str],
    *,
    only: set[str] | None = None,
    waiting: list[PlannedStep],
) -> list[PlannedStep]:
    """A slate's draft-group step partitions, linked but not decided yet; `waiting` are the
    slate's fan-in steps (`fan_in_nodes`), which now wait for them."""
    key = slate.key
    if key in plan.draft_groups:
        return []
    chosen = [g for g in groups if only is None or g in only]
    plan.draft_groups[key] = chosen
    added = []
    # One partition per group, shared by the group's steps.
    partitions = [slate.model_copy(update={"shape": "draft_group", "draft_group_id": g}) for g in chosen]
    for asset in plan.graph.order:
        if plan.graph.specs[asset].shape.name != "draft_group":
            continue
        for partition in partitions:
            node = PlannedStep(asset, partition, "run", "", slate.game_date)
            link(plan, node, {}, {})
            plan.nodes[node.id] = node
            added.append(node)
    for node in waiting:
        if not any(n[1].draft_group_id for n in node.needs):
            link_fan_in(plan, node, chosen)
    return added


def link_fan_in(plan: Plan, node: PlannedStep, groups: list[str]) -> None:
    if node.fan_in is None:
        return
    keys = [node.fan_in.model_copy(update={"draft_group_id": g}) for g in groups]
    for item in plan.graph.specs[node.asset].inputs:
        if item.mapping == "draft_groups" and item.asset in plan.graph.specs:
            node.needs += [(item.asset, key) for key in keys]
    needed = set(node.needs)
    node.gate = [
        (a, key)
        for a in plan.graph.order
        if plan.graph.specs[a].shape.name == "draft_group"
        for key in keys
        if (a, key) not in needed
    ]
