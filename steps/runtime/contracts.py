"""Pandera contracts at data boundaries, with errors that name the column and the check."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaError, SchemaErrors

from steps.runtime.errors import ContractBroken

__all__ = ["Check", "Column", "DataFrameSchema", "enforce", "pa"]

Check = pa.Check
Column = pa.Column
DataFrameSchema = pa.DataFrameSchema


def _summarise(failures: pd.DataFrame) -> str:
    parts = []
    for (column, check), group in failures.groupby(
        [failures["column"].fillna("<frame>").astype(str), failures["check"].astype(str)],
        sort=True,
    ):
        if check == "column_in_dataframe":
            missing = ", ".join(sorted(map(str, group["failure_case"].unique())))
            parts.append(f"missing column(s) {missing}")
            continue
        examples = ", ".join(map(repr, group["failure_case"].head(3).tolist()))
        parts.append(f"column {column!r} failed {check} ({len(group)} case(s), e.g. {examples})")
    return "; ".join(parts)


def enforce(frame: pd.DataFrame, schema: pa.DataFrameSchema, where: str) -> pd.DataFrame:
    """Validate `frame` against `schema`; on failure raise ContractBroken naming what broke."""
    try:
        return schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        detail = _summarise(exc.failure_cases)
        raise ContractBroken(f"contract broken at {where} [{schema.name}]: {detail}") from None
    except SchemaError as exc:
        raise ContractBroken(f"contract broken at {where} [{schema.name}]: {exc}") from None
