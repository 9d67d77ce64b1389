"""The worker process of the local executor: run jobs sent over a pipe, one at a time.

Started by `LocalExecutor` as `python -P -c <bootstrap> <hpt root> <conn fd> <lifeline fd> <parent
pid>` in a new session (its pid is its process group id). Protocol over the connection
(pickled tuples):

    parent -> worker   ("init", {"sys_path": [...], "one_shot": bool})   once, first
                       ("job", key, func, payload_pickle, log_path)       when idle
                       ("stop",)                                          exit cleanly
    worker -> parent   ("ready", pid)                                     once, after init
                       ("done", key, status, value, error, traceback, started_at, ended_at)

The worker dies with its parent: PR_SET_PDEATHSIG and a thread that sees the lifeline pipe reach
EOF both kill the worker's whole process group, so a job's child processes go too.
"""

from __future__ import annotations

import ctypes
import faulthandler
import importlib
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

_PR_SET_PDEATHSIG = 1
_PARENT_DEATH_SIGNAL = signal.SIGUSR2


def main(argv: list[str]) -> None:
    conn_fd, lifeline_fd, parent_pid = (int(a) for a in argv)
    for fd in (conn_fd, lifeline_fd):  # a job's child processes must not hold these
        os.set_inheritable(fd, False)
    if os.getpgid(0) != os.getpid():
        os.setsid()
    # The runner decides what Ctrl-C means. A Python-level no-op handler (not SIG_IGN) keeps
    # SIGINT away from this process while exec'd children of a job still get the default.
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    faulthandler.enable()  # a segfault's traceback goes to fd 2, i.e. the job's log file
    _guard_parent(parent_pid, lifeline_fd)
    conn = Connection(conn_fd)
    _, init = conn.recv()
    _adopt_sys_path(init["sys_path"])
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    conn.send(("ready", os.getpid()))
    _serve(conn, one_shot=init["one_shot"])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # threads a job left behind must not keep the worker alive


def _serve(conn: Connection, one_shot: bool) -> None:
    cache: dict[str, Callable[[Any], Any]] = {}
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] != "job":
            return
        _, key, func, payload, log_path = message
        reply = _run(func, payload, log_path, cache)
        try:
            conn.send(("done", key, *reply))
        except Exception as exc:  # the return value would not pickle
            started, ended = reply[-2:]
            error = f"{_describe(exc)} (the value returned by {func} cannot be sent back)"
            conn.send(("done", key, "failed", None, error, None, started, ended))
        if one_shot:
            return


def _run(func: str, payload: bytes, log_path: str | None, cache: dict) -> tuple:
    """Call the job; return (status, value, error, traceback, started_at, ended_at)."""
    started = time.time()
    try:
        log_fd = _open_log(log_path)
    except OSError as exc:
        return "failed", None, _describe(exc), traceback.format_exc(), started, time.time()
    with _redirected(log_fd):
        try:
            value = _resolve(func, cache)(pickle.loads(payload))
        except BaseException as exc:  # a job's SystemExit or KeyboardInterrupt is a failure too
            tb = traceback.format_exc()
            if log_fd is not None:
                sys.stderr.write(tb)
            return "failed", None, _describe(exc), tb, started, time.time()
    return "ok", value, None, None, started, time.time()


def _resolve(ref: str, cache: dict[str, Callable[[Any], Any]]) -> Callable[[Any], Any]:
    func = cache.get(ref)
    if func is None:
        module_name, _, attr = ref.partition(":")
        func = importlib.import_module(module_name)
        for part in attr.split("."):
            func = getattr(func, part)
        cache[ref] = func
    return func


def _open_log(path: str | None) -> int | None:
    if path is None:
        return None
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


@contextmanager
def _redirected(log_fd: int | None) -> Iterator[None]:
    """Point file descriptors 1 and 2 at `log_fd` for the duration (nothing if None)."""
    if log_fd is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _describe(exc: BaseException) -> str:
    message = str(exc).strip()
    return _first_line(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def _adopt_sys_path(parent_path: list[str]) -> None:
    """Put the runner's sys.path first, so the worker imports what the runner would."""
    sys.path[:] = list(dict.fromkeys(parent_path + sys.path))
    importlib.invalidate_caches()


def _guard_parent(parent_pid: int, lifeline_fd: int) -> None:
    """Kill this worker's process group as soon as the parent process is gone."""
    signal.signal(_PARENT_DEATH_SIGNAL, lambda signum, frame: _on_parent_signal(parent_pid))
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(_PARENT_DEATH_SIGNAL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the guard was in place
        _kill_own_group()

    def watch() -> None:  # the fallback: EOF on the lifeline means the parent closed or died
        while os.read(lifeline_fd, 1):
            pass
        _kill_own_group()

    threading.Thread(target=watch, name="hpt-lifeline", daemon=True).start()


def _on_parent_signal(parent_pid: int) -> None:
    # PR_SET_PDEATHSIG also fires when the parent *thread* that spawned us exits while the parent
    # process lives on; only a changed parent pid means the runner is gone.
    if os.getppid() != parent_pid:
        _kill_own_group()


def _kill_own_group() -> None:
    os.killpg(os.getpgid(0), signal.SIGKILL)
    os._exit(137)  # not reached


if __name__ == "__main__":
    main(sys.argv[1:])
