"""A draft group's rows of a slate-level table, for the steps partitioned by draft group."""

from __future__ import annotations

from typing import Any

import pandas as pd

from steps.runtime.errors import MissingInput


def group_rows(ctx: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a date-level table that belong to this partition's draft group."""
    group = ctx.partition.draft_group_id
    rows = frame[frame["draft_group_id"] == group]
    if rows.empty:
        raise MissingInput(f"draft group {group!r} is not on the {ctx.game_date} slate")
    return rows
