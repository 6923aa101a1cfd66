"""Identifiers for range executions."""

from __future__ import annotations

import uuid
from datetime import datetime

from steps.runtime.timefmt import to_key_ts, utc_now


def new_backfill_id(now: datetime | None = None) -> str:
    """One id per range execution; it is also the correlation id in every manifest and event."""
    return f"bf-{to_key_ts(now or utc_now())}-{uuid.uuid4().hex[:6]}"
