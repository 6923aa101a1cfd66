"""A warm worker: a Python that has imported the step code once and forks per command.

A fresh interpreter importing pandas, pyarrow and pandera costs seconds per step. The warm
worker keeps the command-line contract (it runs exactly the argv the Argo container runs,
parsed by the same `steps.cli.main`) and keeps process isolation (each step is its own
forked process with its own stdout/stderr files and exit status), but pays the imports once.

Protocol: one Unix-socket connection per step. The server keeps spare children forked ahead
of time; it hands a connection to a spare (its file descriptor, over the spare's socket pair)
and forks the next spare while the step runs, so no fork lies on a step's path. The child
reads the request, runs the step and writes its exit status to the connection itself; when
a child dies without one (killed, or at its timeout) the server writes it from the child's
wait status. Every process asks the kernel to kill it when its parent dies, so killing the
runner stops everything under it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

PR_SET_PDEATHSIG = 1
PROFILE_ENV = "PIPELINE_PROFILE_DIR"
TIMED_OUT = 124  # the exit status a step killed at its timeout reports (as coreutils' timeout)
# A step process runs this much nicer than the runner and this server, so handing the next step
# its slot (the runner's threads, this server's accept, a spare's wake-up) is not queued behind
# the steps already running on every core (docs/decisions.md D20).
STEP_NICENESS = 10


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _reply(conn: socket.socket, code: int) -> None:
    with contextlib.suppress(OSError):  # the client may be gone; nobody is left to tell
        conn.sendall((json.dumps({"rc": code}) + "\n").encode())


def _run_step(request: dict[str, Any]) -> int:
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    _replace_environ(request["env"])
    argv = request["argv"]
    if argv[1:3] != ["-m", "steps"]:
        print(f"warm worker runs only `python -m steps ...`, got {argv!r}", file=sys.stderr)
        return 2
    from steps.cli import main

    try:
        return main(argv[3:])
    except BaseException as exc:  # reported as the exit status; nothing escapes the child
        traceback.print_exception(exc)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _replace_environ(env: dict[str, str]) -> None:
    """Make `os.environ` exactly `env`, changing only what differs (each change is a call
    into libc, and the runner's environment is mostly the warm process's own)."""
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _spare(channel: socket.socket) -> NoReturn:
    """A forked child: wait for a connection, run its step, report, exit."""
    code = 1
    try:
        _, fds, _, _ = socket.recv_fds(channel, 1, 1)
        if not fds:
            os._exit(0)  # the server closed: nothing to run
        with socket.socket(fileno=fds[0]) as conn, conn.makefile("rb") as stream:
            request = json.loads(stream.readline())
            # The server enforces the timeout, so a step cannot disarm it.
            channel.sendall(f"{int(request.get('timeout') or 0)}\n".encode())
            with _profiled(request["env"].get(PROFILE_ENV)):
                code = _run_step(request)
            _reply(conn, code)  # before this process is torn down, which takes a while
    finally:
        os._exit(code)


@contextlib.contextmanager
def _profiled(directory: str | None) -> Iterator[None]:
    """With `PIPELINE_PROFILE_DIR` set (`make bench`), each step process leaves its cProfile
    statistics there."""
    if not directory:
        yield
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(os.path.join(directory, f"step-{os.getpid()}.pstats"))


@dataclass
class _Child:
    pid: int
    channel: socket.socket  # the server's end of the child's socket pair
    conn: socket.socket | None = None  # the step's connection, once handed one
    deadline: float | None = None
    timed_out: bool = False


class _Server:
    """The warm process's loop: hand connections to spares, time them out, reap them."""

    def __init__(self, path: str, spares: int) -> None:
        self.spares = max(1, spares)
        self.idle: list[_Child] = []
        self.busy: dict[int, _Child] = {}
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.wakeup_r, wakeup_w = os.pipe()
        os.set_blocking(wakeup_w, False)
        signal.set_wakeup_fd(wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through the pipe
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wakeup_r, selectors.EVENT_READ, "reap")

    def loop(self) -> NoReturn:
        while True:
            # A fork takes milliseconds: only when nothing is waiting, and one at a time.
            short = len(self.idle) < self.spares
            events = self.selector.select(0 if short else self._next_deadline())
            for key, _ in events:
                if key.data == "accept":
                    self._dispatch()
                elif key.data == "reap":
                    os.read(self.wakeup_r, 4096)
                    self._reap()
                else:
                    self._read_timeout(key.data)
            if short and not events:
                self._add_spare()
            self._expire()

    def _fork(self) -> _Child | None:
        ours, theirs = socket.socketpair()
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return None
        if pid == 0:
            try:
                ours.close()
                self._forget()
                _spare(theirs)
            finally:
                os._exit(1)  # never back into the server's loop
        theirs.close()
        return _Child(pid, ours)

    def _add_spare(self) -> None:
        child = self._fork()
        if child is None:
            time.sleep(0.05)  # out of processes or memory for now: do not spin
        else:
            self.idle.append(child)

    def _forget(self) -> None:
        """In a new child: drop the server's sockets and signal handling, and step back in priority."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setpgid(0, 0)  # its own group, so a timeout also ends what the step started
        # Here, while the spare waits for a step, not on the step's path: lowering a running
        # process's priority gives up its core at once when another process is runnable.
        os.nice(STEP_NICENESS)
        _die_with_parent()
        self.selector.close()
        self.listener.close()
        os.close(self.wakeup_r)
        for child in [*self.idle, *self.busy.values()]:
            child.channel.close()
            if child.conn is not None:
                child.conn.close()

    def _dispatch(self) -> None:
        conn, _ = self.listener.accept()
        while (child := self.idle.pop(0) if self.idle else self._fork()) is not None:
            try:
                socket.send_fds(child.channel, [b"s"], [conn.fileno()])
            except OSError:
                child.channel.close()  # it died while idle; reaping forgets it
                continue
            child.conn = conn
            self.busy[child.pid] = child
            self.selector.register(child.channel, selectors.EVENT_READ, child)
            return
        conn.close()  # no process to run it: the client sees the worker as lost

    def _read_timeout(self, child: _Child) -> None:
        if child.pid not in self.busy:
            return  # reaped in this same round
        data = child.channel.recv(64)
        if not data:  # the child exited; its wait status follows
            self.selector.unregister(child.channel)
            return
        seconds = int(data.strip() or 0)
        child.deadline = time.monotonic() + seconds if seconds > 0 else None

    def _next_deadline(self) -> float | None:
        deadlines = [c.deadline for c in self.busy.values() if c.deadline and not c.timed_out]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _expire(self) -> None:
        now = time.monotonic()
        for child in self.busy.values():
            if child.deadline is not None and child.deadline <= now and not child.timed_out:
                child.timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for spare in [c for c in self.idle if c.pid == pid]:  # died idle: the loop replaces it
                self.idle.remove(spare)
                spare.channel.close()
            child = self.busy.pop(pid, None)
            if child is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(child.channel)
            child.channel.close()
            assert child.conn is not None
            # A child that finished wrote its own status first; this one is then unread.
            _reply(child.conn, TIMED_OUT if child.timed_out else os.waitstatus_to_exitcode(status))
            child.conn.close()


def _warm_up() -> None:
    """Do once what the libraries set up on first use, so each step does not: reading parquet
    imports pyarrow's dataset layer and its pandas bridge (C extensions), a first validation
    registers pandera's backends, and a broken contract its error reports."""
    import pandas as pd
    import pyarrow.acero  # noqa: F401 (what pyarrow's compute imports on a join or group-by)

    from steps.runtime.contracts import Check, Column, DataFrameSchema, enforce
    from steps.runtime.errors import ContractBroken
    from steps.runtime.store import frame_to_parquet, parquet_to_frame

    frame = parquet_to_frame(frame_to_parquet(pd.DataFrame({"n": [1, 2], "s": ["a", "b"]})))
    schema = DataFrameSchema({"n": Column(int, Check.ge(0)), "s": Column(str)}, name="warm-up")
    enforce(frame, schema, "warm-up")
    with contextlib.suppress(ContractBroken):
        enforce(frame.assign(n=-frame["n"]), schema, "warm-up")
    str(frame)


def serve(path: str, spares: int = 2) -> None:
    """The server (runs in the warm process)."""
    _die_with_parent()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import steps.cli
    import steps.registry
    import steps.runtime.store.local
    import steps.runtime.store.s3  # both backends: `open_store` imports one lazily
    from steps.runtime.environment import git_sha

    steps.registry.all_steps()  # import every step module (pandas, pandera, pyarrow, ...)
    steps.cli.command()  # the parser, built once
    git_sha()  # asked of git once, not once per step
    _warm_up()
    # What the children inherit is never collected again, so the collector in a child does
    # not walk (and copy, page by page) the whole inherited heap.
    gc.freeze()
    server = _Server(path, spares)
    print("ready", flush=True)
    server.loop()


class WarmWorker:
    """Client side: start the warm process and run step argvs through it."""

    def __init__(self, spares: int = 2) -> None:
        """`spares`: children kept forked ahead (at least as many as steps run at once)."""
        self._dir = tempfile.TemporaryDirectory(prefix="pipeline-warm-")
        self.path = str(Path(self._dir.name) / "sock")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from workflows.local.warm import serve; serve({self.path!r}, {int(spares)})",
            ],
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
            return -9  # the warm process died with the step
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
