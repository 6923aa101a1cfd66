"""Every step the pipeline declares, by asset name."""

from __future__ import annotations

import functools

from steps.runtime.errors import PipelineError
from steps.runtime.step import StepSpec


@functools.cache
def all_steps() -> dict[str, StepSpec]:
    from steps.pipeline import (
        finalize,
        health,
        ingest,
        labels,
        minutes,
        ownership,
        promote,
        rates,
        script,
        sim,
        tracking,
    )

    specs: dict[str, StepSpec] = {}
    for module in (
        ingest,
        tracking,
        minutes,
        rates,
        sim,
        ownership,
        finalize,
        health,
        promote,
        labels,
        script,
    ):
        for spec in module.STEPS:
            if spec.asset in specs:
                raise PipelineError(f"asset {spec.asset!r} is declared twice")
            specs[spec.asset] = spec
    return specs


def get_step(asset: str) -> StepSpec:
    specs = all_steps()
    if asset not in specs:
        raise PipelineError(f"unknown step {asset!r}; known steps: {', '.join(sorted(specs))}")
    return specs[asset]
