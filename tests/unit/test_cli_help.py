"""Every command of both CLIs answers --help (help texts hold brackets that are not markup)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.main import get_command

from steps.cli import app as steps_app
from workflows.cli import app as pipeline_app


def command_paths(app: typer.Typer) -> list[list[str]]:
    root = get_command(app)
    paths: list[list[str]] = [[]]

    def walk(group: object, prefix: list[str]) -> None:
        for name, sub in getattr(group, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


PIPELINE = command_paths(pipeline_app)


def test_every_command_is_listed() -> None:
    names = {" ".join(p) for p in PIPELINE}
    assert {"run", "submit", "cron apply", "render", "status", "report", "plan", "summarize"} <= names


@pytest.mark.parametrize("path", PIPELINE, ids=lambda p: " ".join(p) or "pipeline")
def test_pipeline_help(path: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workflows.cli", *path, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout and "Traceback" not in result.stderr


def test_steps_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "steps", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "s3://<bucket>[/prefix]" in result.stdout


def test_steps_usage_error_is_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "steps", "ingest.schedule", "--bogus"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "No such option" in result.stderr
    assert steps_app.info.help
