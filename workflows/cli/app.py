"""The `pipeline` app and what every command shares: consoles, the store default, dates, errors."""

from __future__ import annotations

import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import cast, get_args
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from steps.runtime import layout
from steps.runtime.errors import PipelineError
from steps.runtime.partition import parse_game_date
from steps.runtime.store import Store
from workflows.dag.config import PipelineConfig
from workflows.dag.model import AsOfMode

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,  # help texts hold literal brackets (s3://<bucket>[/prefix]), not markup
    help="NBA projections: one partitioned DAG, run locally or on Argo.",
)
# Piped output (CI logs, files) gets a wide page instead of rich's 80 columns.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(soft_wrap=True, width=_WIDTH)
err_console = Console(stderr=True, soft_wrap=True, width=_WIDTH)

STORE_HELP = (
    "file://<dir> (embedded default) or s3://<bucket>[/prefix] (MinIO; endpoint and keys from PIPELINE_S3_*)"
)


def default_store() -> str:
    return os.environ.get("PIPELINE_STORE", f"file://{Path.cwd() / 'pipeline-store'}")


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def today_et(config: PipelineConfig) -> date:
    """Today on the slate calendar; PIPELINE_TODAY replays a past day (tests, drills)."""
    if override := os.environ.get("PIPELINE_TODAY"):
        return parse_game_date(override)
    return datetime.now(ZoneInfo(config.timezone)).date()


def parse_date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_game_date(value)
    except PipelineError as exc:
        raise fail(f"{flag}: {exc}") from None


def date_range(start: str | None, end: str | None, default: date | None = None) -> tuple[date, date]:
    """`--start`/`--end` as a range: no `--end` is a range of one, no `--start` is `--end` or `default`."""
    last = parse_date(end, "--end")
    first = parse_date(start, "--start") or last or default
    if first is None:
        raise fail("--start is required")
    last = last or first
    if last < first:
        raise fail(f"--end {last} is before --start {first}")
    return first, last


def as_of_mode_of(value: str) -> AsOfMode:
    if value not in get_args(AsOfMode):
        raise fail(f"--as-of-mode must be one of {', '.join(get_args(AsOfMode))}, not {value!r}")
    return cast(AsOfMode, value)


GROUP_HELP = "The draft group, for a step with one partition per draft group"


def draft_groups_on(target: Store, asset: str, game_date: date) -> list[str]:
    """The draft groups an asset has partitions for on a date (one listing)."""
    records = (
        layout.parse_record_key(i.key) for i in target.list(layout.manifest_date_prefix(asset, game_date))
    )
    return sorted({r[0].key.draft_group_id for r in records if r is not None and r[0].key.draft_group_id})
