"""The one function that builds a step's command line.

The local runner fills it with real values; the Argo templates fill it with `{{...}}`
parameter expressions. Either way the container runs exactly this argv.
"""

from __future__ import annotations

ENTRYPOINT = ["python", "-m", "steps"]


def step_argv(
    asset: str,
    *,
    game_date: str | None,
    run_id: str | None,
    as_of: str,
    store: str,
    correlation_id: str,
    month: str | None = None,
    season: str | None = None,
    draft_group_id: str | None = None,
    profile: str | None = None,
    worlds: str | None = None,
    orchestrator_run_id: str | None = None,
    outputs_dir: str | None = None,
    reason: str | None = None,
    force: str | None = None,  # `--force` / `--no-force` (a flag, or Argo's parameter for one)
    attempt_id: str | None = None,
    python: str = "python",
) -> list[str]:
    argv = [python, "-m", "steps", asset]
    optional = {"--game-date": game_date, "--month": month, "--run-id": run_id}
    for flag, value in optional.items():
        if value is not None:
            argv += [flag, value]
    argv += ["--as-of", as_of, "--store", store, "--correlation-id", correlation_id]
    optional = {
        "--season": season,
        "--draft-group-id": draft_group_id,
        "--profile": profile,
        "--worlds": worlds,
        "--orchestrator-run-id": orchestrator_run_id,
        "--outputs-dir": outputs_dir,
        "--reason": reason,
        "--attempt-id": attempt_id,
    }
    for flag, value in optional.items():
        if value is not None:
            argv += [flag, value]
    return argv if force is None else [*argv, force]
