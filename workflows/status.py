"""What ran, what failed, why: read back from pointers and manifests.

Listing cost is bounded: one paginated listing of the pointers and one per asset, whatever
the range; then one GET per manifest shown.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime

from steps.runtime import layout
from steps.runtime.manifest import Manifest, ManifestError, read_manifest
from steps.runtime.partition import PartitionKey
from steps.runtime.pointer import Pointer
from steps.runtime.store import Store
from workflows.graph import Graph

PUBLISHED = "finalize.unified"


@dataclass
class StepView:
    asset: str
    status: str  # success | failed | skipped | missing
    manifest: Manifest | None = None

    @property
    def duration_s(self) -> float:
        return self.manifest.timing.duration_s if self.manifest else 0.0


@dataclass
class PartitionView:
    game_date: date
    run_id: str
    pointer: Pointer | None
    steps: dict[str, StepView] = field(default_factory=dict)

    @property
    def status(self) -> str:
        states = {s.status for s in self.steps.values()}
        if "failed" in states:
            return "failed"
        if states <= {"success", "skipped"}:
            return "success"
        return "incomplete"

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.steps.values())


def _date_run(key: str) -> tuple[date, str] | None:
    # manifests/<asset>/game_date=<D>/run=<R>/manifest.json
    parts = key.split("/")
    if len(parts) != 5 or not parts[2].startswith("game_date=") or not parts[3].startswith("run="):
        return None
    try:
        return date.fromisoformat(parts[2][10:]), parts[3][4:]
    except ValueError:
        return None


def collect(
    store: Store,
    graph: Graph,
    *,
    start: date | None = None,
    end: date | None = None,
    runs: dict[date, str] | None = None,
) -> list[PartitionView]:
    """One view per date: the run its pointer names (else the newest run, else `runs`)."""

    def in_range(d):
        return (start is None or d >= start) and (end is None or d <= end)

    pointers: dict[date, Pointer] = {}
    for info in store.list(f"current/{PUBLISHED}/"):
        if info.key.endswith(f"/{layout.POINTER_FILE}"):
            day = date.fromisoformat(info.key.split("/")[2][10:])
            if in_range(day):
                pointers[day] = Pointer.model_validate_json(store.get_bytes(info.key))
    seen: dict[date, set[str]] = {}
    existing: set[tuple[str, date, str]] = set()
    for asset in graph.order:
        for info in store.list(layout.manifest_asset_prefix(asset)):
            parsed = _date_run(info.key)
            if parsed and in_range(parsed[0]):
                seen.setdefault(parsed[0], set()).add(parsed[1])
                existing.add((asset, *parsed))
    if runs is not None:
        chosen = {d: r for d, r in runs.items() if in_range(d)}
    else:
        chosen = {d: (pointers[d].run_id if d in pointers else max(rs)) for d, rs in seen.items()}
    views = {
        d: PartitionView(game_date=d, run_id=r, pointer=pointers.get(d)) for d, r in sorted(chosen.items())
    }
    wanted = [(a, d, v.run_id) for d, v in views.items() for a in graph.order if (a, d, v.run_id) in existing]

    def fetch(item: tuple[str, date, str]) -> tuple[tuple[str, date, str], Manifest | None]:
        asset, day, run_id = item
        try:
            return item, read_manifest(store, asset, PartitionKey(game_date=day, run_id=run_id))
        except ManifestError:
            return item, None

    with ThreadPoolExecutor(max_workers=16) as pool:
        found = dict(pool.map(fetch, wanted))
    for day, view in views.items():
        for asset in graph.order:
            manifest = found.get((asset, day, view.run_id))
            view.steps[asset] = StepView(asset, manifest.status if manifest else "missing", manifest)
    return list(views.values())


GLYPHS = {"success": "✓", "failed": "✗", "skipped": "↷", "missing": "·"}


def glyphs(view: PartitionView, order: tuple[str, ...]) -> str:
    return "".join(GLYPHS[view.steps[a].status] for a in order)


def started(view: StepView) -> datetime | None:
    return view.manifest.timing.started_at if view.manifest else None
