"""A warm worker: a Python that has imported the step code once and forks per command.

A fresh interpreter importing pandas, pyarrow and pandera costs seconds per step. The warm
worker keeps the command-line contract (it runs exactly the argv the Argo container runs,
parsed by the same `steps.cli.main`) and keeps process isolation (each step is its own
forked process with its own stdout/stderr files and exit status), but pays the imports once.

Protocol: one Unix-socket connection per step. The server forks a handler per connection;
the handler forks the step and reports its exit status, so even a step killed by a signal
is reported. Every process asks the kernel to kill it when its parent dies, so killing the
runner stops everything under it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

PR_SET_PDEATHSIG = 1
TIMED_OUT = 124  # the exit status a step killed at its timeout reports (as coreutils' timeout)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _run_step(request: dict) -> int:
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    os.environ.clear()
    os.environ.update(request["env"])
    argv = request["argv"]
    if argv[1:3] != ["-m", "steps"]:
        print(f"warm worker runs only `python -m steps ...`, got {argv!r}", file=sys.stderr)
        return 2
    from steps.cli import main

    try:
        return main(argv[3:])
    except BaseException as exc:  # the handler reports it; nothing escapes the child
        import traceback

        traceback.print_exception(exc)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _handle(conn: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _die_with_parent()
    with conn, conn.makefile("rwb") as stream:
        request = json.loads(stream.readline())
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)  # its own group, so a timeout also ends what the step started
            _die_with_parent()
            code = 1
            try:
                code = _run_step(request)
            finally:
                os._exit(code)
        timed_out = []

        def expire(*_: object) -> None:
            timed_out.append(True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

        signal.signal(signal.SIGALRM, expire)
        signal.alarm(int(request.get("timeout") or 0))
        _, status = os.waitpid(pid, 0)
        signal.alarm(0)
        code = TIMED_OUT if timed_out else os.waitstatus_to_exitcode(status)
        stream.write((json.dumps({"rc": code}) + "\n").encode())
        stream.flush()


def serve(path: str) -> None:
    """The server loop (runs in the warm process)."""
    _die_with_parent()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import steps.registry

    steps.registry.all_steps()  # import every step module (pandas, pandera, pyarrow, ...)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped automatically
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        if os.fork() == 0:
            server.close()
            try:
                _handle(conn)
            finally:
                os._exit(0)
        conn.close()


class WarmWorker:
    """Client side: start the warm process and run step argvs through it."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="pipeline-warm-")
        self.path = str(Path(self._dir.name) / "sock")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"from workflows.warm import serve; serve({self.path!r})"],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if line != "ready":
            self.close()
            raise RuntimeError(f"warm worker failed to start (said {line!r})")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(
        self, argv: list[str], *, stdout: Path, stderr: Path, env: dict[str, str], timeout: int = 0
    ) -> int:
        """The step's exit status (TIMED_OUT when killed at `timeout` seconds; 0: none).
        Raises OSError when the warm process is gone."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(self.path)
            with sock.makefile("rwb") as stream:
                request = {
                    "argv": argv,
                    "stdout": str(stdout),
                    "stderr": str(stderr),
                    "env": env,
                    "timeout": timeout,
                }
                stream.write((json.dumps(request) + "\n").encode())
                stream.flush()
                reply = stream.readline()
        if not reply:
            return -9  # the handler died with the step
        return int(json.loads(reply)["rc"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._dir.cleanup()

    def __enter__(self) -> WarmWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_subprocess(
    argv: list[str], *, stdout: Path, stderr: Path, env: dict[str, str], timeout: int = 0
) -> int:
    """The plain way: a fresh interpreter per step (what an Argo pod does)."""
    cmd = [sys.executable, *argv[1:]] if argv[0] == "python" else argv
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True)
        try:
            return proc.wait(timeout=timeout or None)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return TIMED_OUT
