"""What ran, what failed, why: read back from pointers and manifests.

Listing cost is bounded: one paginated listing of the pointers and one of the manifests filed
under the range's days (D22); then one GET per manifest shown. The same listing names every
attempt (`.../attempt=<attempt_id>/...`, ids sortable by start time), so each date's latest run
is found without reading it; only when that run is not the one shown are its step manifests read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from steps.pipeline.finalize import PUBLISHED_ASSET
from steps.runtime import layout
from steps.runtime.errors import ManifestError
from steps.runtime.manifest import STOPPED_SHORT, Manifest, read_manifest
from steps.runtime.partition import PartitionKey
from steps.runtime.pointer import Pointer
from steps.runtime.store import Store
from steps.runtime.store.base import prefix_end
from workflows.dag.graph import Graph


@dataclass
class StepView:
    """One step of a slate's run: one manifest, or one per draft group."""

    asset: str
    status: str  # a manifest status (steps.runtime.manifest.Status) or missing
    manifests: list[Manifest] = field(default_factory=list)

    @property
    def manifest(self) -> Manifest | None:
        failed = [m for m in self.manifests if m.status == "failed"]
        pick = failed or self.manifests
        return pick[0] if pick else None

    @property
    def duration_s(self) -> float:
        return sum(m.timing.duration_s for m in self.manifests)


@dataclass
class LatestRun:
    """The run of a date that made the newest attempt (by attempt id), whatever is current."""

    run_id: str
    attempt_id: str | None
    steps: dict[str, StepView] = field(default_factory=dict)

    @property
    def failures(self) -> list[tuple[str, Manifest]]:
        """(step, failed manifest) of each failed step partition (one per draft group)."""
        return [(a, m) for a, s in self.steps.items() for m in s.manifests if m.status == "failed"]


@dataclass
class PartitionView:
    game_date: date
    run_id: str
    pointer: Pointer | None  # the first draft group's current pointer
    steps: dict[str, StepView] = field(default_factory=dict)
    pointers: dict[str, Pointer] = field(default_factory=dict)  # draft group -> its pointer
    latest: LatestRun | None = None

    @property
    def latest_failed(self) -> bool:
        """A failed attempt made after the current pointer's (a failed rerun of a promoted
        date): the pointer still names the earlier run, so the date looks fine otherwise."""
        if self.latest is None or self.pointer is None or not self.latest.failures:
            return False
        newest = self.latest.attempt_id or ""
        return any(
            newest > (p.attempt_id or "") or p.run_id != self.latest.run_id for p in self.pointers.values()
        )

    @property
    def status(self) -> str:
        states = {s.status for s in self.steps.values()}
        if "failed" in states:
            return "failed"
        if states <= {"success", *STOPPED_SHORT}:
            return "success"
        return "incomplete"

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.steps.values())


def error_line(manifest: Manifest, limit: int = 160) -> str:
    """`<type>: <message>`, first line only, trimmed."""
    if manifest.error is None:
        return "failed"
    message = (manifest.error.message.strip().splitlines() or [""])[0]
    text = f"{manifest.error.type}: {message}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _Inventory:
    """What the manifest listings say, before any manifest is read."""

    seen: dict[date, set[str]] = field(default_factory=dict)  # date -> its runs
    existing: dict[str, list[PartitionKey]] = field(default_factory=dict)  # asset -> its run keys
    attempts: dict[date, dict[str, str]] = field(default_factory=dict)  # date -> run -> newest attempt


def _pointers(store: Store, in_range: Callable[[date | None], bool]) -> dict[date, dict[str, Pointer]]:
    """The published asset's current pointers in range, by date and draft group."""
    pointers: dict[date, dict[str, Pointer]] = {}
    for info in store.list(layout.pointer_asset_prefix(PUBLISHED_ASSET)):
        if layout.parse_pointer_key(info.key) is not None:
            pointer = Pointer.model_validate_json(store.get_bytes(info.key))
            if in_range(pointer.game_date):
                pointers.setdefault(pointer.game_date, {})[pointer.draft_group_id or ""] = pointer
    return pointers


def _within(d: date | None, *, start: date | None, end: date | None) -> bool:
    return d is not None and (start is None or d >= start) and (end is None or d <= end)


def _inventory(store: Store, graph: Graph, start: date | None, end: date | None) -> _Inventory:
    """One listing of the records filed under the range's days (its first month's, too)."""
    in_range = partial(_within, start=start, end=end)
    found = _Inventory()
    slate = set(slate_steps(graph))
    first = layout.manifest_day_prefix(start.replace(day=1)) if start else layout.MANIFESTS
    stop = prefix_end(layout.manifest_day_prefix(end) if end else layout.MANIFESTS)
    existing: dict[str, dict[PartitionKey, None]] = {}
    for info in store.list_after(layout.MANIFESTS, first, stop):
        parsed = layout.parse_record_key(info.key)
        if parsed is None or parsed[0].asset not in graph.specs:
            continue
        run = parsed[0]
        key, day = run.key, run.key.game_date
        if key.month is not None or in_range(day):
            existing.setdefault(run.asset, {})[key] = None
        if day is not None and in_range(day) and key.run_id is not None:
            found.seen.setdefault(day, set()).add(key.run_id)
            if run.asset in slate and run.attempt is not None:
                runs_of = found.attempts.setdefault(day, {})
                runs_of[key.run_id] = max(runs_of.get(key.run_id, ""), run.attempt)
    found.existing = {asset: list(keys) for asset, keys in existing.items()}
    return found


def _latest_runs(days: Iterable[date], found: _Inventory) -> dict[date, tuple[str, str | None]]:
    """Each date's run with the newest attempt, and that attempt."""
    latest: dict[date, tuple[str, str | None]] = {}
    for day in days:
        by_run = {r: found.attempts.get(day, {}).get(r, "") for r in found.seen.get(day, ())}
        if by_run:
            run_id = max(by_run, key=lambda r: (by_run[r], r))
            latest[day] = (run_id, by_run[run_id] or None)
    return latest


def collect(
    store: Store,
    graph: Graph,
    *,
    start: date | None = None,
    end: date | None = None,
    runs: dict[date, str] | None = None,
) -> list[PartitionView]:
    """One view per date: the run its pointers name (else the newest run, else `runs`); each
    step of the slate as its shape has it (a month's schedule, a settled date, every draft group)."""

    in_range = partial(_within, start=start, end=end)
    pointers = _pointers(store, in_range)
    found = _inventory(store, graph, start, end)
    if runs is not None:
        chosen = {d: r for d, r in runs.items() if in_range(d)}
    else:
        chosen = {
            d: (next(iter(pointers[d].values())).run_id if d in pointers else max(rs))
            for d, rs in found.seen.items()
        }
    views = {
        d: PartitionView(
            game_date=d,
            run_id=r,
            pointer=next(iter(pointers.get(d, {}).values()), None),
            pointers=pointers.get(d, {}),
        )
        for d, r in sorted(chosen.items())
    }
    latest_runs = _latest_runs(views, found)
    # the run shown, and the latest one where it is another
    shown = {
        (day, run_id)
        for day, view in views.items()
        for run_id in (view.run_id, *latest_runs.get(day, ())[:1])
    }
    manifests = _read_manifests(store, graph, found, shown)
    for day, view in views.items():
        view.steps = _step_views(graph, found, manifests, day, view.run_id)
        if day in latest_runs:
            run_id, newest = latest_runs[day]
            view.latest = LatestRun(run_id, newest)
            view.latest.steps = (
                view.steps if run_id == view.run_id else _step_views(graph, found, manifests, day, run_id)
            )
    return list(views.values())


Found = dict[tuple[str, PartitionKey], Manifest | None]


def _read_manifests(store: Store, graph: Graph, found: _Inventory, runs: set[tuple[date, str]]) -> Found:
    """Every slate step's manifests of the given (date, run)s, 16 reads at a time."""
    wanted = {
        (asset, key)
        for day, run_id in runs
        for asset in slate_steps(graph)
        for key in _keys_of(graph.specs[asset].shape.name, found.existing.get(asset, []), day, run_id)
    }

    def fetch(item: tuple[str, PartitionKey]) -> tuple[tuple[str, PartitionKey], Manifest | None]:
        try:
            return item, read_manifest(store, *item)
        except ManifestError:
            return item, None

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(pool.map(fetch, wanted))


def _step_views(
    graph: Graph, found: _Inventory, manifests: Found, day: date, run_id: str
) -> dict[str, StepView]:
    views = {}
    for asset in slate_steps(graph):
        keys = _keys_of(graph.specs[asset].shape.name, found.existing.get(asset, []), day, run_id)
        read = [m for k in keys if (m := manifests.get((asset, k))) is not None]
        views[asset] = StepView(asset, _status(read), read)
    return views


def slate_steps(graph: Graph) -> tuple[str, ...]:
    """The steps a slate's run has (window-only history, like each slate's tracking, is not)."""
    return tuple(a for a in graph.order if not graph.window_only(a))


def _keys_of(shape: str, keys: list[PartitionKey], day: date, run_id: str) -> list[PartitionKey]:
    """The partitions of one asset that a slate's run has: its own, its draft groups', its
    date's settled one, or its month's newest run."""
    if shape == "settled_date":
        return [k for k in keys if k.game_date == day]
    if shape == "month":
        runs = sorted((k for k in keys if k.month == f"{day:%Y-%m}"), key=lambda k: k.run_id or "")
        same = [k for k in runs if k.run_id == run_id]
        return same or runs[-1:]
    return [k for k in keys if k.game_date == day and k.run_id == run_id]


def _status(manifests: list[Manifest]) -> str:
    states = {m.status for m in manifests}
    if not states:
        return "missing"
    if "failed" in states:
        return "failed"
    if "success" in states:
        return "success"  # done for some draft groups: the others stopped short or are missing
    return next(s for s in STOPPED_SHORT if s in states)


# One per manifest status and missing: `pipeline status` prints them, and their legend.
GLYPHS = {"success": "✓", "failed": "✗", "not_due": "◷", "not_promoted": "⊘", "missing": "·"}


def glyphs(view: PartitionView, order: tuple[str, ...]) -> str:
    return "".join(GLYPHS[view.steps[a].status] for a in order)
