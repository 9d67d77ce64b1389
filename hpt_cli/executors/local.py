"""LocalExecutor: one persistent worker process per slot on this machine.

Each worker is a fresh interpreter (`subprocess`, never fork: the runner has threads) started in
its own session, so its pid is the id of a process group that also holds every process a job
starts. Killing a job means SIGKILL to that group; the slot then gets a fresh worker at once.
Workers serve many jobs (imports are paid once per worker) unless `isolate=True`, where each
worker runs one job and is replaced. Workers die with the runner (see `_worker`).

A worker inherits the runner's environment (plus its slot's `slot_env`), working directory and
`sys.path` as it is when the worker is spawned. Its stdin is /dev/null; what a job prints without a
`log_path` goes to the runner's stderr.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_ready
from pathlib import Path
from typing import Any

from hpt_cli.executors.base import Executor, Job, JobResult, JobStatus
from hpt_cli.words import signal_name

_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from hpt_cli.executors._worker import main; main(sys.argv[2:])"
)
_HPT_ROOT = str(Path(__file__).resolve().parents[2])  # the folder that holds hpt_cli/
_POLL_S = 0.1  # how often to look for dead workers where pidfd_open is missing
_STOP_GRACE_S = 5.0  # how long a clean stop may take before the worker is killed
_BOOT_S = 60.0  # added to a job's timeout while its worker has not said "ready"


@dataclass
class _Worker:
    """One live worker process and the job it runs, if any."""

    proc: subprocess.Popen
    conn: Connection
    lifeline: int  # write end of a pipe; the worker kills itself when it reads EOF
    pidfd: int | None  # readable once the process has exited (Linux >= 5.3)
    ready: bool = False
    job: Job | None = None
    sent_at: float = 0.0  # time.time() when the job was sent
    deadline: float | None = None  # time.monotonic() past which the job is killed

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> bool:
        """Whether the process has exited, without reaping it (its pid stays reserved)."""
        if not hasattr(os, "waitid"):  # macOS before Python 3.13: reap it
            return self.proc.poll() is not None
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None


class LocalExecutor(Executor):
    """`workers` slots, named "w0".."w{n-1}", each served by one worker process. `submit` takes
    the first free slot, or the one named by `slot=` (the runner picks where GPUs are shared).

    isolate: a fresh worker process for every job (it exits after one job).
    slot_env: one mapping per slot of environment variables set in that slot's workers before
        they start (CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS, ...).
    """

    def __init__(
        self,
        workers: int,
        isolate: bool = False,
        slot_env: Sequence[Mapping[str, str]] | None = None,
        warmup: tuple[str, Any] | None = None,
    ):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if slot_env is not None and len(slot_env) != workers:
            raise ValueError(
                f"slot_env needs one mapping per worker ({workers}), got {len(slot_env)}"
            )
        self.isolate = isolate
        # ("module:function", payload): each worker calls it once before it says it is ready, so
        # what it does (loading the run's data) is not counted in its first job's timeout
        self._warmup = None if warmup is None else (warmup[0], pickle.dumps(warmup[1], protocol=pickle.HIGHEST_PROTOCOL))
        self._names = [f"w{i}" for i in range(workers)]
        self._env = [dict(e) for e in slot_env or [{} for _ in self._names]]
        self._slots: list[_Worker | None] = [None] * workers
        self._done: list[JobResult] = []  # finished, not yet handed out
        self._started = False
        self._closed = False

    # -- the Executor interface ------------------------------------------------------------------

    def start(self) -> None:
        if self._closed:
            raise RuntimeError("this executor was shut down; make a new one")
        if not self._started:
            self._started = True
            for i in range(len(self._slots)):
                self._slots[i] = self._spawn(i)

    def submit(self, job: Job, slot: str | None = None) -> None:
        if not self._started or self._closed:
            raise RuntimeError("submit() needs a started executor that is not shut down")
        if any(w.job is not None and w.job.key == job.key for w in self._slots):
            raise ValueError(f"a job with key {job.key!r} is already running")
        if slot is None:
            i = next((i for i, w in enumerate(self._slots) if w.job is None), None)
            if i is None:
                raise RuntimeError("no free slot: check free_slots() before submit()")
        elif slot not in self._names:
            raise ValueError(f"no slot named {slot!r} (this executor's slots: {', '.join(self._names)})")
        else:
            i = self._names.index(slot)
            if self._slots[i].job is not None:
                raise RuntimeError(f"slot {slot} is running job {self._slots[i].job.key!r}: "
                                   f"pick one of free_slot_names()")
        payload = pickle.dumps(job.payload, protocol=pickle.HIGHEST_PROTOCOL)
        message = ("job", job.key, job.func, payload, job.log_path)
        self._drain(i)  # an idle worker: read its "ready", replace it if it died
        worker = self._slots[i]
        try:
            worker.conn.send(message)
        except OSError:  # it died after the check
            worker = self._respawn(i)
            worker.conn.send(message)
        worker.job, worker.sent_at = job, time.time()
        if job.timeout is not None:  # the clock starts when the worker is up
            boot = 0.0 if worker.ready else _BOOT_S
            worker.deadline = time.monotonic() + job.timeout + boot

    def free_slots(self) -> int:
        return len(self.free_slot_names())

    def free_slot_names(self) -> list[str]:
        if not self._started or self._closed:
            return []
        return [name for name, w in zip(self._names, self._slots) if w.job is None]

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            busy = [i for i, w in enumerate(self._slots) if w is not None and w.job is not None]
            if not busy:
                return self._take()
            handles: dict[object, int] = {}
            for i in busy:
                worker = self._slots[i]
                handles[worker.conn] = i
                if worker.pidfd is not None:
                    handles[worker.pidfd] = i
            limits = [end] + [self._slots[i].deadline for i in busy]
            limit = min((t for t in limits if t is not None), default=None)
            remaining = None if limit is None else max(0.0, limit - time.monotonic())
            if any(self._slots[i].pidfd is None for i in busy):
                remaining = _POLL_S if remaining is None else min(remaining, _POLL_S)
            ready = {handles[h] for h in wait_ready(list(handles), remaining)}
            for i in busy:
                if i in ready or self._slots[i].pidfd is None:
                    self._drain(i)
            self._expire()
            if self._done or (end is not None and time.monotonic() >= end):
                return self._take()

    def shutdown(self, cancel: bool = True) -> list[JobResult]:
        if self._closed or not self._started:
            self._closed = True
            return []
        if not cancel:
            while any(w is not None and w.job is not None for w in self._slots):
                finished = self.wait()  # wait() hands back (and empties) self._done
                self._done.extend(finished)
        self._closed = True  # from here on no worker is replaced
        idle = []
        for i in range(len(self._slots)):
            if self._slots[i] is not None:
                self._drain(i)  # a job that just finished keeps its real result
            worker = self._slots[i]
            if worker is None:
                continue
            if worker.job is not None:
                self._end_job(i, JobStatus.CANCELLED, "cancelled by shutdown")
                continue
            idle.append(worker)
            self._slots[i] = None
        # Idle workers exit on their own, ending what their jobs left running (a pool kept in a
        # global, a setsid child: out of the group that _bury kills); all asked first, then awaited.
        asked = [worker for worker in idle if self._ask_to_stop(worker)]
        for worker in asked:
            self._await_exit(worker)
        for worker in idle:
            self._bury(worker)
        return self._take()

    # -- workers ---------------------------------------------------------------------------------

    def _spawn(self, i: int) -> _Worker:
        parent_conn, child_conn = Pipe(duplex=True)
        lifeline_r, lifeline_w = os.pipe()
        child_fds = (child_conn.fileno(), lifeline_r)
        env = {**os.environ, **self._env[i]}
        argv = [sys.executable, "-P", "-c", _BOOTSTRAP, _HPT_ROOT, *map(str, child_fds)]
        argv.append(str(os.getpid()))
        try:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sys.__stderr__.fileno() if sys.__stderr__ else None,
                pass_fds=child_fds,
                start_new_session=True,
            )
        finally:
            child_conn.close()
            os.close(lifeline_r)
        try:
            pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            pidfd = None
        sys_path = [p or os.getcwd() for p in sys.path]
        parent_conn.send(("init", {"sys_path": sys_path, "one_shot": self.isolate, "warmup": self._warmup}))
        return _Worker(proc=proc, conn=parent_conn, lifeline=lifeline_w, pidfd=pidfd)

    def _respawn(self, i: int) -> _Worker:
        old = self._slots[i]
        if old is not None:
            self._bury(old)
        self._slots[i] = None if self._closed else self._spawn(i)
        return self._slots[i]

    def _take(self) -> list[JobResult]:
        done, self._done = self._done, []
        return done

    def _drain(self, i: int) -> None:
        """Read what slot i's worker has sent; notice its death. Never blocks."""
        worker = self._slots[i]
        gone = False
        try:
            while worker.conn.poll(0):
                message = worker.conn.recv()
                if message[0] == "ready":
                    worker.ready = True
                    if worker.job is not None and worker.job.timeout is not None:
                        worker.deadline = time.monotonic() + worker.job.timeout
                elif message[0] == "done":
                    self._finish(i, message)
                    if self.isolate:  # a one-shot worker exits after its job
                        self._respawn(i)
                        return
        except (EOFError, OSError):
            gone = True  # the worker closed its end: it is dead or dying
        if gone or worker.exited():
            if worker.job is not None:
                _kill_group(worker)  # what the job started dies with it
                self._end_job(i, JobStatus.CRASHED, _death(worker))
            else:
                self._respawn(i)

    def _expire(self) -> None:
        now = time.monotonic()
        for i, worker in enumerate(self._slots):
            if worker is not None and worker.deadline is not None and now >= worker.deadline:
                self._drain(i)  # it may have finished just in time
                worker = self._slots[i]
                if worker is not None and worker.deadline is not None and now >= worker.deadline:
                    error = f"timed out after {float(worker.job.timeout)} s"
                    self._end_job(i, JobStatus.TIMEOUT, error)

    def _finish(self, i: int, message: tuple) -> None:
        _, key, status, value, error, tb, started, ended = message
        worker = self._slots[i]
        worker.job, worker.deadline = None, None
        self._done.append(JobResult(
            key, JobStatus(status), value, error, tb, self._names[i], worker.pid, started, ended
        ))

    def _end_job(self, i: int, status: JobStatus, error: str) -> None:
        """End slot i's job from outside: kill its worker's group, replace the worker."""
        worker = self._slots[i]
        result = JobResult(
            worker.job.key, status, error=error, worker=self._names[i], pid=worker.pid,
            started_at=worker.sent_at, ended_at=time.time(),
        )
        worker.job, worker.deadline = None, None
        self._done.append(result)
        self._respawn(i)

    @staticmethod
    def _ask_to_stop(worker: _Worker) -> bool:
        """Ask an idle worker to exit; False where it cannot be asked (still booting, or gone)."""
        if not worker.ready:
            return False
        try:
            worker.conn.send(("stop",))
        except OSError:
            return False
        return True

    @staticmethod
    def _await_exit(worker: _Worker) -> None:
        """Give a worker asked to stop a moment to exit."""
        end = time.monotonic() + _STOP_GRACE_S
        while not worker.exited() and time.monotonic() < end:
            if worker.pidfd is not None:
                wait_ready([worker.pidfd], end - time.monotonic())
            else:
                time.sleep(0.01)

    def _bury(self, worker: _Worker) -> None:
        """Kill what is left of the worker's process group, reap it, close its handles."""
        _kill_group(worker)
        try:
            worker.proc.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:  # stuck in the kernel; subprocess reaps it later
            pass
        worker.conn.close()
        os.close(worker.lifeline)
        if worker.pidfd is not None:
            os.close(worker.pidfd)


def _kill_group(worker: _Worker) -> None:
    # The group id is the worker's pid, which stays reserved until the worker is reaped.
    if worker.proc.returncode is None:
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _death(worker: _Worker) -> str:
    code = worker.proc.poll()
    if code is None:
        try:
            code = worker.proc.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            return "worker stopped answering"
    if code < 0:
        return died_with_signal(-code)
    return f"worker exited with code {code}"


def died_with_signal(number: int) -> str:
    """The error of a job whose worker a signal killed. Nothing of hpt's sends SIGKILL to a worker
    whose death is reported this way (a timeout or a cancel is reported as such), so it came from
    outside: most often the kernel's OOM killer."""
    name = signal_name(number)
    if number == signal.SIGKILL:
        return f"worker died with signal {name} (out of memory? the kernel's OOM killer sends SIGKILL)"
    return f"worker died with signal {name}"
