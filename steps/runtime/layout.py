"""Every key the pipeline reads or writes is built here, and nowhere else."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from steps.runtime.errors import InvalidPartition
from steps.runtime.partition import PartitionKey, check_token, parse_game_date
from steps.runtime.timefmt import from_key_ts, to_key_ts, utc_now

LANDING = "landing/"
RUNS = "runs/"
MANIFESTS = "manifests/"
CURRENT = "current/"
MODELS = "models/"
BACKFILLS = "backfills/"
EVENTS = "events/"
LOGS = "logs/"
# What a plan may work out again at any time, kept to save the work: deleting it costs time only.
CACHE = "cache/"
POINTER_FILE = "current_run.json"
_ATTEMPT = "attempt="
_HISTORY = "history/"
SNAPSHOT_FILE = "data.parquet"
PLAN_FILE = "plan.json"
SUMMARY_FILE = "summary.json"


def _d(game_date: date) -> str:
    return f"game_date={game_date.isoformat()}"


def landing_source_prefix(source: str) -> str:
    return f"{LANDING}{check_token(source, 'source')}/"


def landing_date_prefix(source: str, game_date: date) -> str:
    return f"{landing_source_prefix(source)}{_d(game_date)}/"


def landing_snapshot_prefix(source: str, game_date: date, snapshot_ts: datetime) -> str:
    return f"{landing_date_prefix(source, game_date)}snapshot_ts={to_key_ts(snapshot_ts)}/"


def landing_snapshot_key(source: str, game_date: date, snapshot_ts: datetime) -> str:
    """A snapshot's data object: it is complete once this exists (docs/landing.md)."""
    return f"{landing_snapshot_prefix(source, game_date, snapshot_ts)}{SNAPSHOT_FILE}"


def first_tips_key(season: int) -> str:
    """The first tips a plan read from a season's schedule snapshots (workflows/dag/first_tips.py)."""
    return f"{CACHE}first_tips/season={season}.json"


def run_prefix(asset: str, key: PartitionKey) -> str:
    return f"{RUNS}{check_token(asset, 'asset')}/{key.segments()}/"


def attempt_prefix(asset: str, key: PartitionKey, attempt_id: str) -> str:
    """Where one attempt of a run writes its outputs: create-only, so a rerun (`--force`,
    `--no-resume`) writes beside an earlier attempt and never over it."""
    return f"{run_prefix(asset, key)}{_ATTEMPT}{check_token(attempt_id, 'attempt_id')}/"


_RECORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_NAME_MAX = 250  # a key's segment is a file name in the directory store: 255 bytes at most


@dataclass(frozen=True)
class RecordName:
    """What one attempt's manifest says, carried in the last segment of its key, so that one
    listing tells every step's state without a read (docs/decisions.md D22). It vouches for
    the record only while the record's bytes still hash to `digest` (the listing's ETag)."""

    written: str  # when the attempt ended, to the microsecond: a run's latest sorts last
    status: str
    identity: str  # a digest of the whole partition (manifest.partition_identity)
    digest: str  # hex MD5 of the record's bytes, as S3 and the directory store give ETags
    error: str = ""  # a failed attempt's error type
    groups: tuple[str, ...] = ()  # the draft groups a fan-out source listed, when they fit

    def text(self, room: int = _NAME_MAX) -> str:
        """The name, with the groups when they fit in `room` characters."""
        error = "".join(c for c in self.error if c in _RECORD_CHARS)[:32] or "-"
        fields = [self.written, self.status, error, self.identity, self.digest]
        grouped = ".".join([*fields, *self.groups]) + ".json"
        if self.groups and all(_record_field(g) for g in self.groups) and len(grouped) <= room:
            return grouped
        return ".".join(fields) + ".json"

    @classmethod
    def parse(cls, name: str) -> RecordName | None:
        if _RECORD_NAME.fullmatch(name) is None:
            return None
        fields = name.removesuffix(".json").split(".")
        written, status, error, identity, digest, *groups = fields
        return cls(written, status, identity, digest, "" if error == "-" else error, tuple(groups))


# Five or more `_record_field`s joined by dots, then `.json`: one match per listed key.
_RECORD_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}(?:\.[A-Za-z0-9_-]{1,128}){4,}\.json")


def _record_field(value: str) -> bool:
    return 0 < len(value) <= 128 and set(value) <= _RECORD_CHARS


def record_written(ts: datetime) -> str:
    """`RecordName.written`: fixed width, so lexical order is time order."""
    return f"{to_key_ts(ts)[:-1]}{ts.microsecond:06d}Z"


def manifest_day(key: PartitionKey) -> date:
    """The day a partition's manifests are filed under: its date, or its month's first day."""
    if key.game_date is not None:
        return key.game_date
    if key.month is not None:
        return date.fromisoformat(f"{key.month}-01")
    raise ValueError(f"partition {key.segments()!r} has neither a date nor a month")


def manifest_day_prefix(day: date) -> str:
    """Every asset's manifests of one day: the days come first, so one listing over a range
    of days sees every step's records (D22)."""
    return f"{MANIFESTS}{day.isoformat()}/"


# Under a day, a run is one folder and each attempt one file in it, each name's parts joined
# by this (no token holds one): MinIO lists such a tree twice as fast as one nested by asset,
# partition and attempt (docs/decisions.md D22).
_PART = ","


def manifest_run_prefix(asset: str, key: PartitionKey) -> str:
    """Every attempt's record of one run: `manifests/<day>/<asset>,<partition>/`."""
    folder = _PART.join([check_token(asset, "asset"), *key.segments().split("/")])
    if len(folder.encode()) > _NAME_MAX:
        raise InvalidPartition(
            f"asset and partition {folder!r} make a key segment of over {_NAME_MAX} bytes; use shorter names"
        )
    return f"{manifest_day_prefix(manifest_day(key))}{folder}/"


def record_key(asset: str, key: PartitionKey, attempt_id: str, name: RecordName) -> str:
    """One attempt's manifest, written create-only and never again: the run's latest attempt
    is the record whose name sorts last; a pointer names the record of the attempt it made
    current, so a later attempt of a promoted run never changes what is current.
    `manifests/<day>/<asset>,<partition segments>/attempt=<id>,<name>`."""
    prefix = attempt_record_prefix(asset, key, attempt_id)
    return f"{prefix}{name.text(_NAME_MAX - len(prefix.rsplit('/', 1)[1]))}"


def attempt_record_prefix(asset: str, key: PartitionKey, attempt_id: str) -> str:
    """The start of the one record an attempt writes (`record_key`)."""
    return f"{manifest_run_prefix(asset, key)}{_ATTEMPT}{check_token(attempt_id, 'attempt_id')}{_PART}"


def split_record_key(key: str) -> tuple[str, str, RecordName] | None:
    """(run prefix, attempt id, name) of a key shaped as a `record_key`, by its text alone: what
    a plan needs of thousands of listed keys, each matched to the run prefix a node expects
    (`parse_record_key` also checks the partition)."""
    folder, _, file = key.rpartition("/")
    attempt, _, text = file.partition(_PART)
    if not key.startswith(MANIFESTS) or key.count("/") != 3 or not attempt.startswith(_ATTEMPT):
        return None
    name = RecordName.parse(text)
    return (f"{folder}/", attempt.removeprefix(_ATTEMPT), name) if name is not None else None


def parse_record_key(key: str) -> tuple[RunRef, RecordName] | None:
    """The run, attempt and record name of a `record_key`; None for any other key."""
    day, folder, file = (
        ([*key.removeprefix(MANIFESTS).split("/"), "", ""])[:3] if key.startswith(MANIFESTS) else ("",) * 3
    )
    asset, *segments = folder.split(_PART)
    attempt, _, text = file.partition(_PART)
    name = RecordName.parse(text)
    if name is None or key.count("/") != 3 or not segments or not attempt.startswith(_ATTEMPT):
        return None
    try:
        partition = PartitionKey.from_segments("/".join(segments))
        run = RunRef(
            check_token(asset, "asset"), partition, check_token(attempt.removeprefix(_ATTEMPT), "attempt_id")
        )
        same_day = manifest_day(partition).isoformat() == day
    except ValueError:
        return None
    return (run, name) if same_day and partition.segments() == "/".join(segments) else None


def output_key(asset: str, key: PartitionKey, attempt_id: str, name: str, suffix: str = "parquet") -> str:
    """One output of an attempt: `runs/<asset>/<partition>/attempt=<id>/<name>.<suffix>`."""
    return f"{attempt_prefix(asset, key, attempt_id)}{check_token(name, 'output')}.{check_token(suffix, 'output suffix')}"


def manifest_date_prefix(asset: str, game_date: date) -> str:
    """A prefix of every run's folder of an asset's partitions on one date (each draft group's,
    too)."""
    return manifest_scope_prefix(asset, PartitionKey(game_date=game_date))


def manifest_scope_prefix(asset: str, key: PartitionKey) -> str:
    """A prefix of every run's folder of one partition (the key without its run). It also
    starts the folders of a draft group whose id extends another's: filter what it lists by
    `parse_record_key`'s partition."""
    return manifest_run_prefix(asset, key.scope()).removesuffix("/")


def pointer_asset_prefix(asset: str) -> str:
    """Every pointer (current and history) of one asset, all partitions."""
    return f"{CURRENT}{check_token(asset, 'asset')}/"


def pointer_scope(asset: str, key: PartitionKey) -> str:
    """The folder holding an asset's pointer for one partition (all runs) and its history:
    `current/<asset>/game_date=<D>/[draft_group=<G>/]`."""
    return f"{pointer_asset_prefix(asset)}{key.scope().segments()}/"


def model_pointer_scope(model: str) -> str:
    return f"{MODELS}{check_token(model, 'model')}/"


def pointer_key(scope: str) -> str:
    """The current pointer of a scope (`pointer_scope` or `model_pointer_scope`)."""
    return f"{scope}{POINTER_FILE}"


def history_prefix(scope: str) -> str:
    return f"{scope}{_HISTORY}"


def history_key(scope: str, seq: int) -> str:
    """One recorded version of a scope's pointer, zero-padded so that keys sort as versions do."""
    return f"{history_prefix(scope)}{seq:08d}.json"


def scratch_prefix(name: str) -> str:
    """Throw-away work (e.g. `pipeline verify`'s recomputation), never read as a result."""
    return f"scratch/{check_token(name, 'scratch name')}/"


def backfill_prefix(backfill_id: str) -> str:
    return f"{BACKFILLS}{check_token(backfill_id, 'backfill_id')}/"


def backfill_key(backfill_id: str, name: str) -> str:
    """One of a range's own files: plan.json, summary.json, summary.csv, report.html."""
    return f"{backfill_prefix(backfill_id)}{check_token(name, 'backfill file')}"


def plan_key(backfill_id: str) -> str:
    """The plan a range recorded for whoever summarises it (workflows/dag/planrecord.py)."""
    return backfill_key(backfill_id, PLAN_FILE)


def event_day_prefix(day: str | None = None) -> str:
    """All events, or one UTC day's (`YYYYMMDD`, as event keys begin)."""
    return f"{EVENTS}{check_token(day, 'event day')}/" if day else EVENTS


def event_key(ts: datetime, event_id: str) -> str:
    stamp = to_key_ts(ts)
    return f"{event_day_prefix(stamp[:8])}{stamp}-{check_token(event_id, 'event id')}.json"


def log_prefix(asset: str, key: PartitionKey) -> str:
    return f"{LOGS}{check_token(asset, 'asset')}/{key.segments()}/"


def log_key(asset: str, key: PartitionKey, attempt: int, stream: str) -> str:
    return f"{log_prefix(asset, key)}attempt-{attempt}.{stream}.txt"


def new_attempt_id() -> str:
    """Unique per execution and sortable by start time, e.g. `20250115T233001Z-3f9a1c`: the
    `attempt=` segment of an attempt's keys."""
    return f"{to_key_ts(utc_now())}-{os.urandom(3).hex()}"


# ---- parsing: each builder's inverse, so no caller splits a key by hand ------------------


@dataclass(frozen=True)
class RunRef:
    """One run of one asset as a key under runs/ or manifests/ names it, with the attempt
    where the key names one."""

    asset: str
    key: PartitionKey
    attempt: str | None = None


def _tail(key: str, root: str) -> tuple[str, list[str]] | None:
    """`<root><asset>/<rest...>` -> (asset, rest), the asset checked as the builders check it."""
    if not key.startswith(root):
        return None
    asset, *rest = key.removeprefix(root).split("/")
    try:
        return check_token(asset, "asset"), rest
    except ValueError:
        return None


def _run_ref(key: str, root: str) -> tuple[RunRef, list[str]] | None:
    """`<root><asset>/<partition segments>/<rest...>` -> (the run, rest)."""
    found = _tail(key, root)
    if found is None:
        return None
    asset, parts = found
    count = 0
    while count < len(parts) and "=" in parts[count] and not parts[count].startswith(_ATTEMPT):
        count += 1
    try:
        partition = PartitionKey.from_segments("/".join(parts[:count]))
    except ValueError:
        return None
    rest = parts[count:]
    return (RunRef(asset, partition), rest) if rest else None


def _scope_of(segments: str) -> PartitionKey | None:
    """A partition without its run (`game_date=<D>/draft_group=<G>`), as scopes name it."""
    try:
        # from_segments wants a run after a draft group, and a scope has none: lend it one.
        key = PartitionKey.from_segments(f"{segments}/run=r").scope()
    except ValueError:
        return None
    return key if key.segments() == segments else None


def parse_run_key(key: str) -> RunRef | None:
    """Any key under `run_prefix`: an output (`output_key`), an attempt's folder
    (`attempt_prefix`), or a file of a run written before attempts had folders (no attempt)."""
    found = _run_ref(key, RUNS)
    if found is None:
        return None
    run, rest = found
    if not rest[0].startswith(_ATTEMPT):
        return run
    try:
        return RunRef(run.asset, run.key, check_token(rest[0].removeprefix(_ATTEMPT), "attempt_id"))
    except ValueError:
        return None


def parse_pointer_scope(prefix: str) -> tuple[str, PartitionKey] | None:
    """(asset, partition without run) of a `pointer_scope`, e.g. a folder listed under one."""
    found = _tail(prefix.rstrip("/"), CURRENT)
    scope = _scope_of("/".join(found[1])) if found is not None and prefix.endswith("/") else None
    return (found[0], scope) if found is not None and scope is not None else None


def parse_pointer_key(key: str) -> str | None:
    """The scope of a `pointer_key`."""
    if not key.startswith((CURRENT, MODELS)) or not key.endswith(f"/{POINTER_FILE}"):
        return None
    return key.removesuffix(POINTER_FILE)


def parse_history_key(key: str) -> tuple[str, int] | None:
    """(scope, version) of a `history_key`."""
    scope, sep, name = key.rpartition(f"/{_HISTORY}")
    number = name.removesuffix(".json")
    if not sep or not name.endswith(".json") or not number.isascii() or not number.isdigit():
        return None
    return f"{scope}/", int(number)


def parse_landing_date_prefix(prefix: str) -> tuple[str, date] | None:
    """(source, game date) of a `landing_date_prefix`, e.g. a folder listed under a source."""
    found = _tail(prefix, LANDING)
    if found is None or len(found[1]) != 2 or found[1][1] != "" or not found[1][0].startswith("game_date="):
        return None
    try:
        return found[0], parse_game_date(found[1][0].removeprefix("game_date="))
    except ValueError:
        return None


def parse_landing_snapshot_key(key: str) -> tuple[str, date, datetime] | None:
    """(source, game date, snapshot time) of a `landing_snapshot_key`."""
    head, _, name = key.rpartition("/")
    if name != SNAPSHOT_FILE:
        return None
    day_prefix, _, stamp = head.rpartition("/")
    landed = parse_landing_date_prefix(f"{day_prefix}/")
    if landed is None or not stamp.startswith("snapshot_ts="):
        return None
    try:
        return landed[0], landed[1], from_key_ts(stamp.removeprefix("snapshot_ts="))
    except ValueError:
        return None


def parse_backfill_key(key: str) -> tuple[str, str] | None:
    """(backfill id, file name) of a `backfill_key`."""
    backfill_id, sep, name = key.removeprefix(BACKFILLS).partition("/")
    if not key.startswith(BACKFILLS) or not sep:
        return None
    try:
        return check_token(backfill_id, "backfill_id"), check_token(name, "backfill file")
    except ValueError:
        return None


def parse_event_day_prefix(prefix: str) -> str | None:
    """The day (`YYYYMMDD`) of an `event_day_prefix`, e.g. a folder listed under events/."""
    day = prefix.removeprefix(EVENTS).removesuffix("/")
    ok = prefix.startswith(EVENTS) and prefix.endswith("/") and len(day) == 8 and day.isascii()
    return day if ok and day.isdigit() else None


def parse_event_key(key: str) -> tuple[datetime, str] | None:
    """(time, to the second, event id) of an `event_key`."""
    head, _, name = key.rpartition("/")
    stamp, sep, event_id = name.removesuffix(".json").partition("-")
    if parse_event_day_prefix(f"{head}/") is None or not sep or not name.endswith(".json"):
        return None
    try:
        return from_key_ts(stamp), check_token(event_id, "event id")
    except ValueError:
        return None


def parse_log_key(key: str) -> tuple[int, str] | None:
    """`log_key`'s attempt number and stream (`stdout`, `stderr`)."""
    name = key.rsplit("/", 1)[-1]
    if not (key.startswith(LOGS) and name.startswith("attempt-") and name.endswith(".txt")):
        return None
    number, _, stream = name[len("attempt-") : -len(".txt")].partition(".")
    return (int(number), stream) if number.isdigit() and stream else None


def attempt_started(attempt_id: str) -> datetime | None:
    """`new_attempt_id`'s start time; None for an id in another form."""
    try:
        return from_key_ts(attempt_id.split("-", 1)[0])
    except ValueError:
        return None


def newest_log(keys: Iterable[str], stream: str = "stderr") -> str | None:
    """Among log keys, the newest attempt's log of `stream` (by attempt number, not by text)."""
    found = {p[0]: k for k in keys if (p := parse_log_key(k)) is not None and p[1] == stream}
    return found[max(found)] if found else None
