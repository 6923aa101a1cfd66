"""The `script` step kind: run an existing command as a black box, under a manifest.

This is how a team moves its scripts under the orchestrator first: the command gets its
inputs as local files (PIPELINE_INPUT_<ASSET>) and a folder to write into
(PIPELINE_OUTPUT_DIR); the step records exit code, duration, the tails of stdout/stderr and
every file it finds there, uploaded under the run prefix.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from steps.runtime.shapes import Input
from steps.runtime.step import StepContext, StepSpec
from steps.runtime.store import frame_to_parquet

TAIL = 2000


class ScriptFailed(RuntimeError):
    pass


def script_step(
    name: str, command: Sequence[str], *, consumes: tuple[str | Input, ...], description: str
) -> StepSpec:
    asset = f"script.{name}"

    def run(ctx: StepContext) -> None:
        with tempfile.TemporaryDirectory(prefix=f"{asset}-") as scratch:
            work = Path(scratch)
            out_dir = work / "out"
            out_dir.mkdir()
            env = dict(os.environ)
            env.update(
                PIPELINE_GAME_DATE=ctx.game_date.isoformat(),
                PIPELINE_RUN_ID=ctx.partition.run_id or "",
                PIPELINE_AS_OF=ctx.partition.as_of_iso(),
                PIPELINE_OUTPUT_DIR=str(out_dir),
            )
            for item in ctx.spec.inputs:
                upstream = item.asset
                local = work / f"{upstream}.parquet"
                local.write_bytes(frame_to_parquet(ctx.upstream(upstream)))
                env[f"PIPELINE_INPUT_{upstream.upper().replace('.', '_')}"] = str(local)
            argv = [sys.executable if part == "{python}" else part for part in command]
            started = time.monotonic()
            proc = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, check=False)
            duration = time.monotonic() - started
            ctx.metric("exit_code", proc.returncode)
            ctx.metric("script_duration_s", duration)
            ctx.check("stdout_tail", True, proc.stdout[-TAIL:], severity="warn")
            ctx.check("stderr_tail", True, proc.stderr[-TAIL:], severity="warn")
            if proc.returncode != 0:
                raise ScriptFailed(
                    f"{' '.join(command)} exited {proc.returncode}; stderr tail: {proc.stderr[-400:].strip()}"
                )
            found = sorted(p for p in out_dir.rglob("*") if p.is_file())
            for path in found:
                rel = path.relative_to(out_dir).as_posix()
                stem, _, suffix = rel.rpartition(".")
                ctx.write_bytes(stem or rel, path.read_bytes(), suffix=suffix or "bin")
            ctx.metric("files", len(found))

    return StepSpec(asset=asset, run=run, description=description, consumes=consumes, retries=1)


STEPS = [
    script_step(
        "dk_export",
        ["{python}", "-m", "steps.pipeline.legacy.dk_export"],
        consumes=(Input("finalize.unified", "draft_groups"),),  # the whole slate: every draft group
        description="The team's existing DK upload exporter, run as a black box",
    )
]
