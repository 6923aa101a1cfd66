"""`pipeline gc`: find, and with `--delete` remove, run prefixes and attempts nothing references."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from steps.runtime import layout
from steps.runtime.errors import ObjectNotFound, PipelineError
from steps.runtime.events import Event
from steps.runtime.manifest import Manifest, parse_manifest
from steps.runtime.partition import PartitionKey, month_of
from steps.runtime.pointer import Pointer
from steps.runtime.store import ObjectInfo, Store
from steps.runtime.timefmt import iso_utc, to_key_ts, utc_now

KEEP_DAYS = 30
IN_FLIGHT_HOURS = 48

RunId = tuple[str, str]  # (asset, partition segments)


class RangeInFlight(PipelineError):
    """A range may be reading runs right now: gc refuses to delete anything."""


@dataclass
class RunEntry:
    """Everything stored for one run of one asset: outputs by attempt, and its manifests."""

    asset: str
    segments: str
    outputs: dict[str | None, list[ObjectInfo]] = field(default_factory=dict)  # attempt -> objects
    attempt_manifests: dict[str, ObjectInfo] = field(default_factory=dict)  # attempt -> its record
    written: dict[str, str] = field(default_factory=dict)  # attempt -> when its record was written

    @property
    def key(self) -> PartitionKey:
        return PartitionKey.from_segments(self.segments)

    @property
    def latest_manifest(self) -> ObjectInfo | None:
        """The latest attempt's record: the one whose name sorts last (D22)."""
        if not self.attempt_manifests:
            return None
        latest = max(self.attempt_manifests, key=lambda a: (self.written[a], self.attempt_manifests[a].key))
        return self.attempt_manifests[latest]

    def attempts(self) -> set[str]:
        return {a for a in self.outputs if a is not None} | set(self.attempt_manifests)

    def objects(self) -> list[ObjectInfo]:
        return [o for objs in self.outputs.values() for o in objs]


@dataclass
class Candidate:
    asset: str
    partition: str
    run_id: str | None
    attempts: list[str]
    manifests: list[str]  # deleted first
    outputs: list[str]
    size: int
    why: str

    @property
    def objects(self) -> int:
        return len(self.manifests) + len(self.outputs)


@dataclass
class GcPlan:
    now: datetime
    cutoff: datetime
    referenced: dict[RunId, set[str | None]]  # kept runs and the attempts named in them
    candidates: list[Candidate]

    @property
    def total_objects(self) -> int:
        return sum(c.objects for c in self.candidates)

    @property
    def total_bytes(self) -> int:
        return sum(c.size for c in self.candidates)


def run_of(key: str) -> tuple[RunId, str | None] | None:
    """The run an output or manifest key belongs to, and the attempt where the key names one."""
    record = layout.parse_record_key(key)
    run = layout.parse_run_key(key) or (record[0] if record else None)
    return ((run.asset, run.key.segments()), run.attempt) if run is not None else None


def inventory(store: Store) -> dict[RunId, RunEntry]:
    """Two paginated listings (`runs/`, `manifests/`) describe every run; no object is read."""
    runs: dict[RunId, RunEntry] = {}

    def entry(run: RunId) -> RunEntry:
        return runs.setdefault(run, RunEntry(*run))

    for info in store.list(layout.RUNS):
        if (output := layout.parse_run_key(info.key)) is not None:
            entry((output.asset, output.key.segments())).outputs.setdefault(output.attempt, []).append(info)
    for info in store.list(layout.MANIFESTS):
        record = layout.parse_record_key(info.key)
        if record is not None and (attempt := record[0].attempt) is not None:
            found = entry((record[0].asset, record[0].key.segments()))
            found.attempt_manifests[attempt] = info
            found.written[attempt] = record[1].written
    return runs


def live_pointers(store: Store, cutoff: datetime) -> list[tuple[Pointer, str]]:
    """Every current pointer, and every history version that was current at some time since
    `cutoff` (promoted since, or the version current at the cutoff), with why it is kept.
    History is read newest first and only until the first version older than the cutoff."""
    found: list[tuple[Pointer, str]] = []
    history: dict[str, list[tuple[int, str]]] = {}
    for root in (layout.CURRENT, layout.MODELS):
        for info in store.list(root):
            if layout.parse_pointer_key(info.key) is not None:
                pointer = Pointer.model_validate_json(store.get_bytes(info.key))
                found.append((pointer, f"current pointer {info.key}"))
            elif (version := layout.parse_history_key(info.key)) is not None:
                history.setdefault(version[0], []).append((version[1], info.key))
    for scope, versions in history.items():
        for _, key in sorted(versions, reverse=True):
            pointer = Pointer.model_validate_json(store.get_bytes(key))
            found.append((pointer, f"pointer history v{pointer.seq} of {scope} (in the window)"))
            if pointer.promoted_at < cutoff:
                break  # this version was current at the cutoff; older ones were not since
    return found


def check_not_in_flight(store: Store, *, hours: float = IN_FLIGHT_HOURS, now: datetime | None = None) -> None:
    """Refuse while a range may be running: a `range_started` event (local ranges) with no
    `range_finished` for its correlation id, or a recorded cluster plan (`backfills/<id>/plan.json`)
    with no `summary.json` beside it, either from the last `hours`."""
    now = now or utc_now()
    since = now - timedelta(hours=hours)
    started: dict[str, Event] = {}
    finished: set[str] = set()
    first_day = to_key_ts(since)[:8]
    for day in store.list_dirs(layout.EVENTS):
        if (layout.parse_event_day_prefix(day) or first_day) < first_day:
            continue
        for info in store.list(day):
            named = layout.parse_event_key(info.key)
            if named is not None and named[0] < since:
                continue
            event = Event.model_validate_json(store.get_bytes(info.key))
            if event.kind == "range_started":
                started[event.correlation_id] = event
            elif event.kind == "range_finished":
                finished.add(event.correlation_id)
    open_ranges = [
        f"{cid} (local, started {iso_utc(e.ts)})" for cid, e in started.items() if cid not in finished
    ]
    files: dict[str, set[str]] = {}
    for info in store.list(layout.BACKFILLS):
        if (file := layout.parse_backfill_key(info.key)) is not None:
            files.setdefault(file[0], set()).add(file[1])
    for backfill_id, names in sorted(files.items()):
        if layout.PLAN_FILE in names and layout.SUMMARY_FILE not in names:
            key = layout.plan_key(backfill_id)
            try:
                created = datetime.fromisoformat(str(json.loads(store.get_bytes(key))["created_at"]))
            except (ObjectNotFound, KeyError, ValueError):
                created = now  # unreadable: assume it is running
            if created.tzinfo is None or created >= since:
                open_ranges.append(
                    f"{backfill_id} (cluster plan without a summary, created {created.isoformat()})"
                )
    if open_ranges:
        raise RangeInFlight(
            f"refusing to collect garbage while a range is in flight: {', '.join(sorted(open_ranges))}. "
            "A running range resolves upstream runs as it goes; wait for it to finish (its "
            f"range_finished event or summary.json), or look again after {hours:g}h if it died."
        )


class _Manifests:
    """Manifests read at most once each."""

    def __init__(self, store: Store, runs: dict[RunId, RunEntry]) -> None:
        self.store, self.runs, self.cache = store, runs, dict[str, Manifest | None]()

    def read(self, key: str) -> Manifest | None:
        if key not in self.cache:
            try:
                self.cache[key] = parse_manifest(self.store.get_bytes(key), self.store.describe(key))
            except ObjectNotFound:
                self.cache[key] = None
        return self.cache[key]

    def latest(self, run: RunId) -> Manifest | None:
        entry = self.runs.get(run)
        return self.read(entry.latest_manifest.key) if entry and entry.latest_manifest else None

    def of_attempt(self, run: RunId, attempt: str | None) -> Manifest | None:
        entry = self.runs.get(run)
        if entry is None:
            return None
        if attempt is not None and attempt in entry.attempt_manifests:
            return self.read(entry.attempt_manifests[attempt].key)
        latest = self.latest(run)
        return latest if latest and (attempt is None or latest.attempt_id == attempt) else None


def referenced_runs(
    store: Store, runs: dict[RunId, RunEntry], pointers: list[tuple[Pointer, str]]
) -> tuple[dict[RunId, set[str | None]], dict[RunId, str]]:
    """The runs to keep, each with the attempts named in it (None: its latest), and why."""
    manifests = _Manifests(store, runs)
    kept: dict[RunId, set[str | None]] = {}
    why: dict[RunId, str] = {}
    queue: deque[tuple[RunId, str | None, str]] = deque()
    for pointer, reason in pointers:
        named = run_of(pointer.manifest_path)
        run = named[0] if named else (pointer.asset, pointer.key.segments())
        queue.append((run, pointer.attempt_id or (named[1] if named else None), reason))
        if pointer.scope.startswith(layout.CURRENT):
            # The whole promoted run of the slate: status, report and `pipeline verify` read
            # every step of it (date-level, its draft group's, and its month's partitions).
            for other, entry in runs.items():
                key = entry.key
                if (
                    key.run_id == pointer.run_id
                    and (key.game_date == pointer.game_date or key.month == month_of(pointer.game_date))
                    and key.draft_group_id in (None, pointer.draft_group_id)
                ):
                    queue.append((other, None, f"run {pointer.run_id} is named by {reason}"))
    for run, entry in runs.items():
        if entry.key.run_id is None:  # not run-scoped (a settled date): the only copy
            queue.append((run, None, "not run-scoped: the partition's only copy"))
    while queue:
        run, attempt, reason = queue.popleft()
        attempts = kept.setdefault(run, set())
        why.setdefault(run, reason)
        if attempt in attempts:
            continue
        attempts.add(attempt)
        read = [manifests.of_attempt(run, attempt)]
        if attempt is not None:
            latest = manifests.latest(run)
            read.append(latest)
            queue.append((run, None, reason))
        for manifest in read:
            if manifest is None or manifest.status != "success":
                continue
            for item in manifest.inputs:
                found = run_of(item.path) if item.kind != "source" else None
                if found:
                    queue.append((found[0], found[1], f"read by {manifest.asset} run {manifest.key.run_id}"))
    return kept, why


def _latest_attempt(entry: RunEntry, manifests: _Manifests) -> str | None:
    latest = manifests.latest((entry.asset, entry.segments))
    return latest.attempt_id if latest else None


def _run_age(entry: RunEntry, manifests: _Manifests) -> datetime | None:
    """When the run's newest attempt started (from attempt ids; the manifest if they do not say)."""
    starts = [layout.attempt_started(a) for a in entry.attempts()]
    if starts and all(s is not None for s in starts):
        return max(s for s in starts if s is not None)
    latest = manifests.latest((entry.asset, entry.segments))
    if latest is not None and all(layout.attempt_started(a) is None for a in entry.attempts()):
        return latest.timing.finished_at
    return None  # an attempt of unknown age: keep


def _stale_run(entry: RunEntry, newest: datetime, keep_days: float) -> Candidate:
    """A whole run no pointer or reader names, older than the keep window."""
    objects = entry.objects()
    # The latest record last, so that no earlier attempt is ever the run's latest meanwhile.
    manifest_keys = [
        info.key
        for attempt, info in sorted(entry.attempt_manifests.items(), key=lambda a: entry.written[a[0]])
    ]
    return Candidate(
        asset=entry.asset,
        partition=entry.key.scope().segments(),
        run_id=entry.key.run_id,
        attempts=sorted(entry.attempts()),
        manifests=manifest_keys,
        outputs=[o.key for o in objects],
        size=sum(o.size for o in objects) + sum(i.size for i in entry.attempt_manifests.values()),
        why=f"unreferenced run{'' if entry.latest_manifest else ' (no manifest: orphan outputs)'}, "
        f"newest attempt {iso_utc(newest)} is older than {keep_days:g} days",
    )


def _superseded_attempts(entry: RunEntry, latest: str, kept: set[str | None]) -> list[Candidate]:
    """A run's attempts before its latest that nothing names and that are known to be over."""
    latest_start = layout.attempt_started(latest)
    found: list[Candidate] = []
    for attempt in sorted(entry.attempts() - {latest} - kept):
        start = layout.attempt_started(attempt)
        finished = attempt in entry.attempt_manifests
        if not finished and (start is None or latest_start is None or start >= latest_start):
            continue  # no manifest and not known to predate the latest: maybe still running
        outputs = entry.outputs.get(attempt, [])
        own_manifest = entry.attempt_manifests.get(attempt)
        found.append(
            Candidate(
                asset=entry.asset,
                partition=entry.key.scope().segments(),
                run_id=entry.key.run_id,
                attempts=[attempt],
                manifests=[own_manifest.key] if own_manifest else [],
                outputs=[o.key for o in outputs],
                size=sum(o.size for o in outputs) + (own_manifest.size if own_manifest else 0),
                why=f"superseded attempt (the run's latest is {latest}; no pointer or reader names it)",
            )
        )
    return found


def plan_gc(
    store: Store,
    *,
    keep_days: float = KEEP_DAYS,
    in_flight_hours: float = IN_FLIGHT_HOURS,
    now: datetime | None = None,
) -> GcPlan:
    """What gc would delete, and why; reads pointers and referenced manifests, lists the rest."""
    now = now or utc_now()
    check_not_in_flight(store, hours=in_flight_hours, now=now)
    cutoff = now - timedelta(days=keep_days)
    runs = inventory(store)
    kept, _ = referenced_runs(store, runs, live_pointers(store, cutoff))
    manifests = _Manifests(store, runs)
    candidates: list[Candidate] = []
    for run, entry in sorted(runs.items()):
        newest = _run_age(entry, manifests) if run not in kept else None
        if newest is not None and newest < cutoff:
            candidates.append(_stale_run(entry, newest, keep_days))
            continue
        latest = _latest_attempt(entry, manifests)
        if latest is not None:  # without a latest attempt, nothing is superseded
            candidates.extend(_superseded_attempts(entry, latest, kept.get(run, set())))
    return GcPlan(now=now, cutoff=cutoff, referenced=kept, candidates=candidates)


def delete_candidates(store: Store, plan: GcPlan, *, in_flight_hours: float = IN_FLIGHT_HOURS) -> int:
    """Delete object by object; returns how many objects were deleted.

    Manifests go FIRST, outputs after. Readers trust only what a success manifest names, so
    once a run's manifests are gone nothing can resolve it; a gc killed half-way then leaves
    orphan outputs without a manifest, which the next gc finds (an unreferenced run, aged by
    its attempt ids) and finishes. The other order would leave, after a crash, a manifest
    naming outputs that no longer exist: a run that looks valid and fails every reader.
    Within a run, the latest attempt's record goes last (`_stale_run`).
    """
    check_not_in_flight(store, hours=in_flight_hours)  # again: a range may have started since
    deleted = 0
    for candidate in plan.candidates:
        for key in [*candidate.manifests, *candidate.outputs]:
            store.delete(key)
            deleted += 1
    return deleted
