"""The executor seam: run opaque jobs on workers, report each one exactly once.

An executor knows nothing of specs, searchers, storage or trials. It is given `Job`s (a function
named "package.module:function" and a picklable payload) and hands back one `JobResult` per job.
Every implementation passes the shared contract suite in tests/executors/test_contract.py.

The promises, for every implementation:

- `submit` never blocks on the job; it raises RuntimeError when no slot is free (check
  `free_slots()` first) or the executor is not started, ValueError for a key already running.
- Each submitted job yields exactly one JobResult, from `wait()` or from `shutdown()`.
- A job's exception is a result (status "failed", with the traceback), never an exception in the
  caller, and the executor goes on with other jobs; so does a worker that dies (status "crashed").
- `timeout` is wall time; an overrun job is killed with everything it started (status "timeout").
- `shutdown(cancel=True)` kills running jobs (status "cancelled") and leaves no process behind.
- Where `free_slot_names()` is not None, `submit(job, slot=name)` runs the job on that slot (a free
  one; RuntimeError for a busy one, ValueError for a name that is no slot). An executor that
  places jobs itself (Dask: its scheduler picks a worker) keeps the default None and is never
  given a slot; the runner then has no say in which slot, or GPU, a trial gets.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


class JobStatus(enum.StrEnum):
    """How a job ended. The values are plain strings: `result.status == "ok"` holds."""

    OK = "ok"  # func returned; `value` holds what it returned
    FAILED = "failed"  # func raised; `error` and `traceback` say what
    TIMEOUT = "timeout"  # ran past `Job.timeout` and was killed with its child processes
    CRASHED = "crashed"  # the worker died under it: a signal (segfault, OOM kill) or an exit
    CANCELLED = "cancelled"  # killed by `shutdown(cancel=True)`


@dataclass(frozen=True)
class Job:
    """One call `func(payload)` to run on a worker.

    key: unique among the jobs running at once (the runner uses trial id + attempt).
    func: "package.module:function" (the function may be a dotted attribute path); each worker
        imports it once and caches it.
    payload: any picklable value; it is pickled at `submit`, so an unpicklable one fails there.
    timeout: seconds of wall time from the moment the worker takes the job; then the job and
        every process it started are killed and the result is "timeout".
    log_path: when set, the job's file descriptors 1 and 2 are appended to this file while it
        runs (so child processes and C-level output land there too); its folder must exist.
    """

    key: str
    func: str
    payload: Any = None
    timeout: float | None = None
    log_path: str | None = None

    def __post_init__(self) -> None:
        module, sep, name = self.func.partition(":")
        if not (module and sep and name):
            raise ValueError(
                f"Job.func must look like 'package.module:function', got {self.func!r}"
            )
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"Job.timeout must be > 0 seconds or None, got {self.timeout!r}")


@dataclass(frozen=True)
class JobResult:
    """How one job ended. `status` is a JobStatus value.

    error: one line ("ValueError: bad lr", "timed out after 2.0 s", "worker died with signal
        SIGSEGV", "worker exited with code 1"); None when ok.
    traceback: the full traceback when func raised (also appended to the job's log file).
    worker: the stable name of the slot that ran it ("w0", "w1", ...); pid: the worker process.
    started_at, ended_at: `time.time()` when the job started on the worker (or was handed to it,
        when the worker could not say) and when it ended.
    """

    key: str
    status: str
    value: Any = None
    error: str | None = None
    traceback: str | None = None
    worker: str = ""
    pid: int | None = None
    started_at: float = 0.0
    ended_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == JobStatus.OK


class Executor(ABC):
    """Runs jobs on a fixed number of slots. Call it from one thread; it is not thread-safe.

    Usage: `start()`; while `free_slots()`: `submit(job)`; `wait(timeout)` for finished results;
    finally `shutdown()`. As a context manager it starts, and on exit cancels what still runs.
    """

    @abstractmethod
    def start(self) -> None:
        """Bring up the workers. Returns without waiting for them to be ready."""

    @abstractmethod
    def submit(self, job: Job, slot: str | None = None) -> None:
        """Hand `job` to a free slot; RuntimeError when none is free. `slot`: that slot, one of
        `free_slot_names()`; only passed to an executor whose `free_slot_names()` is not None."""

    @abstractmethod
    def free_slots(self) -> int:
        """How many slots are not running a job (a slot being refilled with a worker counts)."""

    def free_slot_names(self) -> list[str] | None:
        """The free slots by name ("w0", ...), for `submit(job, slot=...)`; None (the default)
        where the executor picks the slot itself. The names are JobResult.worker's."""
        return None

    @abstractmethod
    def wait(self, timeout: float | None = None) -> list[JobResult]:
        """Results of jobs that finished since the last call, once each.

        Blocks until at least one job finishes or `timeout` seconds pass (an empty list);
        returns [] at once when nothing runs. Enforces job timeouts while it waits.
        """

    @abstractmethod
    def shutdown(self, cancel: bool = True) -> list[JobResult]:
        """Stop the workers and return the results not yet handed out.

        cancel=True: kill running jobs and their processes; they come back "cancelled" (a job
        that had already finished comes back with its real result). cancel=False: let running
        jobs finish (their timeouts still hold) and return their results. Idempotent.
        """

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(cancel=True)
