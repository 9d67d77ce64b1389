"""The worker process of the local executor: run jobs sent over a pipe, one at a time.

Started by `LocalExecutor` as `python -P -c <bootstrap> <hpt root> <conn fd> <lifeline fd> <parent
pid>` in a new session (its pid is its process group id). Protocol over the connection
(pickled tuples):

    parent -> worker   ("init", {"sys_path": [...], "one_shot": bool,
                                 "warmup": (func, payload pickle) | None})  once, first
                       ("job", key, func, payload_pickle, log_path)       when idle
                       ("stop",)                                          exit cleanly
    worker -> parent   ("ready", pid)                                     once, after init
                       ("done", key, status, value, error, traceback, started_at, ended_at)

The worker dies with its parent: PR_SET_PDEATHSIG and a thread that sees the lifeline pipe reach
EOF both kill the worker's whole process group, so a job's child processes go too. Nothing else
ends it: SIGINT, SIGTERM and SIGHUP are no-ops here (the runner decides when its workers stop).

The worker is a child subreaper (Linux): what a job leaves running, also a process that left the
worker's process group (`setsid`, a double-forked daemon), stays the worker's, and ends when the
worker does (`hpt_cli.reaper`), never outliving the run. Not after each job: a process pool a
trial keeps in a global for later trials (joblib's reusable executor, a multiprocessing Pool) must
keep working. A command trial ends what its program left as soon as it exits (hpt_cli.command).

A job's log is best effort: output that cannot be written to it (a full disk, `ulimit -f`) or a
log that cannot be opened is dropped, never an error of the job or of the worker, so the job's own
result or error always goes back over the connection.
"""

from __future__ import annotations

import contextlib
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
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from hpt_cli import reaper

_PR_SET_PDEATHSIG = 1
_PARENT_DEATH_SIGNAL = signal.SIGUSR2
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # the runner's to act on, not the worker's


def main(argv: list[str]) -> None:
    conn_fd, lifeline_fd, parent_pid = (int(a) for a in argv)
    for fd in (conn_fd, lifeline_fd):  # a job's child processes must not hold these
        os.set_inheritable(fd, False)
    if os.getpgid(0) != os.getpid():
        os.setsid()
    # The runner alone decides when a worker stops (SIGKILL to its group, or a "stop" message):
    # Ctrl-C, a Jenkins abort or a systemd stop that signals every process of the tree must not
    # end a trial behind the runner's back. A Python-level no-op handler (not SIG_IGN) keeps these
    # away from this process while programs a job execs still get the default; a process a job
    # forks (a multiprocessing pool's workers) gets the defaults back (_defaults_in_child).
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _ignore)
    os.register_at_fork(before=_hold_signals, after_in_parent=_release_signals, after_in_child=_defaults_in_child)
    reaper.become_subreaper()  # a job's orphaned descendants come to us, not to PID 1, and die with us
    faulthandler.enable()  # a segfault's traceback goes to fd 2, i.e. the job's log file
    _guard_parent(parent_pid, lifeline_fd)
    conn = Connection(conn_fd)
    _, init = conn.recv()
    _adopt_sys_path(init["sys_path"])
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    cache: dict[str, Callable[[Any], Any]] = {}
    _warm_up(init.get("warmup"), cache)
    conn.send(("ready", os.getpid()))  # a job's timeout counts from here: the warm-up is not its time
    _serve(conn, one_shot=init["one_shot"], cache=cache)
    reaper.end_children()  # what jobs left running (pools kept in globals, setsid children) ends with us
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # threads a job left behind must not keep the worker alive


def _warm_up(warmup: tuple[str, bytes] | None, cache: dict) -> None:
    """What every job of this worker will need first (the run's data), before the worker says it
    is ready. Silent and best effort: a failure here is the first job's to report, in its log."""
    if warmup is None:
        return
    func, payload = warmup
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _resolve(func, cache)(pickle.loads(payload))
        except Exception:  # noqa: BLE001 - see the docstring
            pass


def _serve(conn: Connection, one_shot: bool, cache: dict[str, Callable[[Any], Any]]) -> None:
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] != "job":
            return
        _, key, func, payload, log_path = message
        try:
            reply = _run(func, payload, log_path, cache)
        except Exception as exc:  # noqa: BLE001 - e.g. no file descriptor left to redirect with
            now = time.time()
            reply = ("failed", None, _describe(exc), traceback.format_exc(), now, now)
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
    log_fd = _open_log(log_path)
    with _redirected(log_fd):
        try:
            value = _resolve(func, cache)(pickle.loads(payload))
        except BaseException as exc:  # a job's SystemExit or KeyboardInterrupt is a failure too
            tb = traceback.format_exc()
            if log_fd is not None:
                sys.stderr.write(tb)  # dropped if the log cannot take it (see _Lenient)
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
    """The job's log, opened for appending; /dev/null where it cannot be opened (the job runs
    anyway: its result matters more than its log)."""
    if path is None:
        return None
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return os.open(os.devnull, os.O_WRONLY)


class _Lenient:
    """sys.stdout / sys.stderr while a job writes to its log: what cannot be written (ENOSPC,
    EFBIG, EIO) is dropped instead of raising in the job (a `print` must not fail a trial) or in
    the worker. Everything else is the wrapped stream's."""

    def __init__(self, stream: Any):
        self._stream = stream
        self.failed = False

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError:
            self.failed = True
            return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            self.failed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def _redirected(log_fd: int | None) -> Iterator[None]:
    """Point file descriptors 1 and 2 at `log_fd` for the duration (nothing if None), with
    sys.stdout and sys.stderr dropping what the log cannot take."""
    if log_fd is None:
        yield
        return
    streams = sys.stdout, sys.stderr
    for stream in streams:
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    saved = os.dup(1), os.dup(2)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    lenient = _Lenient(streams[0]), _Lenient(streams[1])
    sys.stdout, sys.stderr = lenient
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams
        failed = any(s.failed for s in lenient)
        for stream in streams:
            try:
                stream.flush()
            except (OSError, ValueError):
                failed = True
        if failed:  # output the log could not take is still buffered: drop it, do not let it
            _drain_to_devnull(streams)  # reach the runner's stderr once fds 1 and 2 are back
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _drain_to_devnull(streams: tuple[Any, ...]) -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        for stream in streams:
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    finally:
        os.close(null)


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


def _ignore(signum: int, frame: Any) -> None:
    pass


_FORKING = threading.local()  # the forking thread's signal mask from before the fork


def _hold_signals() -> None:
    """Before a fork: the stop signals wait (blocked), so none reaches the child before it has its
    own handlers (one sent at once, `Process.start(); terminate()`, would meet `_ignore`)."""
    _FORKING.mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)


def _release_signals() -> None:
    """After a fork: the forking thread's mask as it was (a signal it blocked itself stays so)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, getattr(_FORKING, "mask", ()))


def _defaults_in_child() -> None:
    """A process a job forks is the job's, not a worker: Python's default signal handlers, so that
    `Pool.terminate()` (and a `with Pool(...)` block's end) or `Process.terminate()` ends it with
    SIGTERM, and the worker's parent-death handler is not its own. Then the signals held back
    since the fork are delivered."""
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for signum in (signal.SIGTERM, signal.SIGHUP, _PARENT_DEATH_SIGNAL):
            signal.signal(signum, signal.SIG_DFL)
    except ValueError:  # not the main thread of the child: leave it as it is
        pass
    finally:
        _release_signals()


def _kill_own_group() -> None:
    try:
        reaper.kill_children()  # also those that left the group (setsid), while they are still ours
    except Exception:  # noqa: BLE001 - the group must die whatever happens
        pass
    os.killpg(os.getpgid(0), signal.SIGKILL)
    os._exit(137)  # not reached


if __name__ == "__main__":
    main(sys.argv[1:])
