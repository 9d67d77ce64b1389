"""DaskExecutor: jobs as tasks on an existing Dask distributed cluster.

The runner stays the one process that searches and writes rows; each job becomes one Dask task
(`hpt_cli.executors._dask_task.run_job`) which runs the job in a fresh process on the worker,
with the same guarantees as the local executor: log capture, timeouts that kill the job's whole
process group, a crash that takes only the trial down. See docs/dask.md.

Slots are named "w0".."w{n-1}" like the local executor's (`JobResult.worker`); the Dask worker
that ran a job is named in the first line hpt writes to the job's log. `distributed` is imported
when the executor starts, never at hpt import time.
"""

from __future__ import annotations

import contextlib
import pickle
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpt_cli.errors import HptError
from hpt_cli.executors.base import Executor, Job, JobResult, JobStatus

_HANDSHAKE_MARGIN_S = 1.0  # the connect (handshake included) gets connect_timeout + at most this
_CLOSE_TIMEOUT_S = 5.0  # how long closing a client that failed to start may take
_BACKSTOP_S = 30.0  # client-side deadline: timeout + this after the task said it started
_CANCEL_GRACE_S = 10.0  # how long shutdown(cancel=True) waits for tasks to kill their trials
_CAPACITY_TTL_S = 2.0  # how long a reading of the cluster's size is reused by free_slots()
_POLL_S = 1.0  # longest single wait on the futures, so deadlines are looked at


class DaskUnavailable(HptError):
    """The scheduler cannot be reached, or no worker offers what the jobs need."""


@dataclass
class _Running:
    job: Job
    future: Any  # distributed.Future
    slot: str
    submitted_at: float  # time.time()


class DaskExecutor(Executor):
    """Runs jobs as tasks on the Dask cluster whose scheduler is at `scheduler`.

    slots: how many jobs run at once; default: what the cluster can hold now (the workers'
        threads, or with `resources_per_job` how many jobs the workers' resources fit),
        re-read every few seconds, so workers that join or leave change it.
    resources_per_job: Dask resources each task needs, e.g. {"CPU": 1} or {"GPU": 0.5}; Dask
        places tasks only on workers started with enough of them (`--resources "GPU=2"`).
    connect_timeout: seconds to reach the scheduler and to see a worker that can run the jobs.
    env: environment variables set in every job's process (OMP_NUM_THREADS, ...), on top of the
        Dask worker's own environment.
    """

    def __init__(
        self,
        scheduler: str,
        slots: int | None = None,
        resources_per_job: Mapping[str, float] | None = None,
        connect_timeout: float = 10,
        env: Mapping[str, str] | None = None,
    ):
        if slots is not None and slots < 1:
            raise ValueError(f"slots must be >= 1 or None, got {slots}")
        for name, amount in (resources_per_job or {}).items():
            if not amount > 0:
                raise ValueError(f"resources_per_job[{name!r}] must be > 0, got {amount!r}")
        self.scheduler = scheduler
        self.slots = slots
        self.resources = dict(resources_per_job or {})
        self.connect_timeout = connect_timeout
        self.env = dict(env or {})
        self._client: Any = None
        self._event_name = f"hpt-cancel-{uuid.uuid4().hex}"
        self._running: dict[str, _Running] = {}  # job key -> running job
        self._starts: dict[str, float] = {}  # Dask key -> time.monotonic() its task last started
        self._done: list[JobResult] = []
        self._capacity = (0, -1e9)  # (slots, time.monotonic() when read)
        self._started = False
        self._closed = False

    # -- the Executor interface ------------------------------------------------------------------

    def start(self) -> None:
        if self._closed:
            raise RuntimeError("this executor was shut down; make a new one")
        if self._started:
            return
        from distributed.comm import CommClosedError, parse_address

        try:
            scheme, location = parse_address(self.scheduler)  # host:port alone means tcp
            if scheme not in ("tcp", "tls", "inproc", "ucx", "ws", "wss"):
                raise ValueError(f"unknown address scheme {scheme!r}")
            if scheme in ("tcp", "tls") and not location.rpartition(":")[2].isdigit():
                raise ValueError("missing port number")
        except ValueError as exc:
            raise DaskUnavailable(f"--scheduler {self.scheduler}: not a Dask scheduler address ({exc}); "
                                  "give tcp://host:8786") from None
        try:
            self._client = _connect(self.scheduler, self.connect_timeout)
        except (TimeoutError, CommClosedError) as exc:  # connected, but no Dask handshake came back
            raise DaskUnavailable(
                f"no Dask scheduler answered at {self.scheduler} within {self.connect_timeout:g} s "
                f"({type(exc).__name__}): something there accepts connections but does not speak "
                f"the Dask protocol; did you give the dashboard port? the scheduler listens on "
                f"8786 by default (tcp://host:8786)") from None
        except Exception as exc:  # refused, or no TCP connection within the timeout
            raise DaskUnavailable(
                f"cannot reach the Dask scheduler at {self.scheduler} within "
                f"{self.connect_timeout:g} s ({type(exc).__name__}); start one with "
                f"`dask scheduler` and pass its address (tcp://host:8786)") from exc
        self._started = True
        try:
            from hpt_cli.executors._dask_task import STARTED_TOPIC

            self._client.subscribe_topic(STARTED_TOPIC, self._on_started)
            self._await_capacity()
        except BaseException:
            self._client.close()
            self._closed = True
            raise

    def submit(self, job: Job) -> None:
        if not self._started or self._closed:
            raise RuntimeError("submit() needs a started executor that is not shut down")
        if job.key in self._running:
            raise ValueError(f"a job with key {job.key!r} is already running")
        if self.free_slots() <= 0:
            raise RuntimeError("no free slot: check free_slots() before submit()")
        payload = pickle.dumps(job.payload, protocol=pickle.HIGHEST_PROTOCOL)
        from hpt_cli.executors._dask_task import run_job

        future = self._client.submit(
            run_job, job.key, job.func, payload, job.timeout, job.log_path, self.env,
            self.resources.get("GPU"), self._event_name,
            key=f"hpt-{job.key}-{uuid.uuid4().hex[:12]}", pure=False,
            resources=self.resources or None,
        )
        used = {r.slot for r in self._running.values()}
        slot = next(f"w{i}" for i in range(len(used) + 1) if f"w{i}" not in used)
        self._running[job.key] = _Running(job, future, slot, time.time())

    def free_slots(self) -> int:
        if not self._started or self._closed:
            return 0
        return max(0, self._slot_count() - len(self._running))

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self._collect()
            self._expire()
            if self._done or not self._running:
                return self._take()
            now = time.monotonic()
            limits = [end, now + _POLL_S] + [self._deadline(r) for r in self._running.values()]
            remaining = max(0.0, min(t for t in limits if t is not None) - now)
            if end is not None and now >= end:
                return self._take()
            self._wait_futures(remaining, "FIRST_COMPLETED")

    def shutdown(self, cancel: bool = True) -> list[JobResult]:
        if self._closed or not self._started:
            self._closed = True
            return []
        try:
            if not cancel:
                finished: list[JobResult] = []
                while self._running:
                    finished += self.wait()  # wait() hands out self._done: keep a separate list
                self._done += finished
            else:
                self._cancel_all()
        finally:
            self._closed = True
            self._client.close()  # the user's cluster goes on; only this client leaves
        return self._take()

    def _wait_futures(self, timeout: float, return_when: str) -> None:
        """Block until the running futures are done (all or the first) or `timeout` passes."""
        from distributed import wait as dask_wait

        futures = [r.future for r in self._running.values()]
        try:
            with self._client.as_current():
                dask_wait(futures, timeout=timeout, return_when=return_when)
        except Exception:  # noqa: BLE001, S110 - a timeout, or a future the scheduler cancelled
            pass  # (FuturesCancelledError): _collect reports each future by its status

    # -- the cluster -----------------------------------------------------------------------------

    def _cluster_capacity(self) -> int:
        """How many jobs the workers can hold now: threads, or whole fits of resources_per_job."""
        workers = self._client.scheduler_info(n_workers=-1).get("workers", {})
        total = 0
        for info in workers.values():
            if self.resources:
                have = info.get("resources") or {}
                total += min(int(have.get(name, 0) / need + 1e-9)
                             for name, need in self.resources.items())
            else:
                total += int(info.get("nthreads", 0))
        return total

    def _slot_count(self) -> int:
        if self.slots is not None:
            return self.slots
        count, read_at = self._capacity
        if time.monotonic() - read_at > _CAPACITY_TTL_S:
            try:
                count = self._cluster_capacity()
            except (OSError, TimeoutError):
                pass  # keep the last reading; the next call tries again
            self._capacity = (count, time.monotonic())
        return count

    def _await_capacity(self) -> None:
        """Wait up to connect_timeout for a worker that can run the jobs; raise if none comes."""
        end = time.monotonic() + self.connect_timeout
        while True:
            capacity = self._cluster_capacity()
            if capacity > 0:
                self._capacity = (capacity, time.monotonic())
                return
            if time.monotonic() >= end:
                break
            time.sleep(0.2)
        needs = ", ".join(f"{k}={v:g}" for k, v in self.resources.items())
        if needs:
            raise DaskUnavailable(
                f"no Dask worker at {self.scheduler} offers the resources a trial needs "
                f"({needs}); start workers with e.g. `dask worker {self.scheduler} "
                f"--resources \"{needs.replace(', ', ',')}\"` (`hpt worker` does this)")
        raise DaskUnavailable(f"no Dask worker joined the scheduler at {self.scheduler} within "
                              f"{self.connect_timeout:g} s; start some with `dask worker "
                              f"{self.scheduler}`")

    # -- results ---------------------------------------------------------------------------------

    def _take(self) -> list[JobResult]:
        done, self._done = self._done, []
        return done

    def _collect(self) -> None:
        for key, running in list(self._running.items()):
            if running.future.done():
                self._forget(key)
                self._done.append(self._result_of(running))

    def _on_started(self, event: tuple[float, Any]) -> None:
        """A task began (or began again on another worker): its timeout backstop starts now."""
        _, msg = event  # called on the client's event loop thread
        if isinstance(msg, dict) and "key" in msg:
            self._starts[msg["key"]] = time.monotonic()

    def _deadline(self, running: _Running) -> float | None:
        """Past this the job is a timeout even if its worker never said so (it stopped answering).
        The worker enforces the real timeout; this backstop counts from the last task start."""
        started = self._starts.get(running.future.key)
        if running.job.timeout is None or started is None:
            return None
        return started + running.job.timeout + _BACKSTOP_S

    def _forget(self, key: str) -> _Running:
        running = self._running.pop(key)
        self._starts.pop(running.future.key, None)
        return running

    def _expire(self) -> None:
        now = time.monotonic()
        for key, running in list(self._running.items()):
            deadline = self._deadline(running)
            if deadline is not None and now >= deadline:
                running.future.cancel()  # the task sees its key released and kills the trial
                self._forget(key)
                self._done.append(self._ended(running, JobStatus.TIMEOUT,
                                              f"timed out after {float(running.job.timeout)} s"))

    def _result_of(self, running: _Running) -> JobResult:
        future = running.future
        if future.status == "finished":
            try:
                out = future.result(timeout=self.connect_timeout)
            except Exception as exc:  # noqa: BLE001 - the result would not come back
                return self._ended(running, JobStatus.FAILED, _describe(exc))
            files = out.pop("files", None)
            if files is not None and running.job.log_path is not None:
                _unpack(files, running.job.log_path)
            return JobResult(
                running.job.key, JobStatus(out["status"]), out["value"], out["error"],
                out["traceback"], running.slot, out["pid"], out["started_at"] or running.submitted_at,
                out["ended_at"] or time.time(),
            )
        if future.status == "error":
            exc = future.exception(timeout=self.connect_timeout)
            if type(exc).__name__ == "KilledWorker":  # Dask gave up: workers kept dying under it
                return self._ended(running, JobStatus.CRASHED, _describe(exc))
            tb = "".join(_format_tb(exc, future))
            if running.job.log_path is not None:
                _append(running.job.log_path, tb)
            return self._ended(running, JobStatus.FAILED, _describe(exc), tb)
        return self._ended(running, JobStatus.CRASHED,
                           f"the Dask task was {future.status} (scheduler restarted or lost?)")

    def _ended(self, running: _Running, status: JobStatus, error: str,
               traceback: str | None = None) -> JobResult:
        return JobResult(running.job.key, status, error=error, traceback=traceback,
                         worker=running.slot, started_at=running.submitted_at, ended_at=time.time())

    def _cancel_all(self) -> None:
        """Tell every task to kill its trial, collect what they report, then drop the rest."""
        if not self._running:
            return
        from distributed import Event

        event = Event(self._event_name, client=self._client)
        try:
            event.set()
        except OSError:
            pass  # the scheduler is gone: nothing runs there any more
        else:
            self._wait_futures(_CANCEL_GRACE_S, "ALL_COMPLETED")
        for key, running in list(self._running.items()):
            self._forget(key)
            if running.future.done():
                result = self._result_of(running)
            else:
                running.future.cancel()
                result = self._ended(running, JobStatus.CANCELLED, "cancelled by shutdown")
            self._done.append(result)
        try:
            event.clear()  # removes the event from the scheduler
        except OSError:
            pass


def _connect(address: str, timeout: float) -> Any:
    """A `distributed.Client` connected to the scheduler at `address`, or an exception within
    about `timeout` seconds; a failed attempt leaves no thread or connection behind.

    `Client(address, timeout=...)` bounds only the TCP connect (with its retries): the Dask
    handshake that follows (`distributed.comm.connect` writes its handshake, then awaits the
    peer's with no deadline) waits forever on a peer that accepts the connection but never
    answers in Dask's framing, such as the scheduler's HTTP dashboard or any other TCP service.
    So the whole start (connect, handshake, registration) runs under one deadline on the client's
    event loop (`sync(..., callback_timeout=...)`, which cancels it there), a little past
    `timeout` so that a scheduler that cannot be reached at all still fails as an OSError from
    the connect itself. Raises TimeoutError when that deadline passes (connected, no handshake),
    CommClosedError when the peer hung up instead of answering, OSError when nothing accepted the
    connection."""
    from distributed import Client

    deadline = timeout + min(_HANDSHAKE_MARGIN_S, timeout / 2)

    class _BoundedClient(Client):
        def start(self, **kwargs: Any) -> None:
            try:
                super().start(callback_timeout=deadline, **kwargs)  # Client.start -> sync()
            except BaseException:
                with contextlib.suppress(Exception):
                    self.close(timeout=_CLOSE_TIMEOUT_S)
                with contextlib.suppress(Exception):  # close() skips this for a client that
                    self._loop_runner.stop()  # _start had already closed: the IO loop thread
                raise

    return _BoundedClient(address, timeout=timeout, set_as_default=False)


def _describe(exc: BaseException) -> str:
    message = str(exc).strip()
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text.splitlines()[0]


def _format_tb(exc: BaseException, future: Any) -> list[str]:
    import traceback

    tb = future.traceback(timeout=5)
    return traceback.format_exception(type(exc), exc, tb)


def _append(path: str, text: str) -> None:
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
    except OSError:
        pass


def _unpack(files: list[tuple[str, bytes]], log_path: str) -> None:
    """Write the files a remote worker shipped back into the log's folder on this machine."""
    folder = Path(log_path).parent.resolve()
    log_name = Path(log_path).name
    for rel, data in files:
        target = (folder / rel).resolve()
        if not target.is_relative_to(folder):
            continue  # never write outside the job's folder
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = "ab" if rel == log_name else "wb"  # the log is appended to, like local logs
        with open(target, mode) as f:
            f.write(data)


def worker_argv(scheduler: str, name: str | None = None, inventory: Any = None
                ) -> tuple[list[str], dict[str, str]]:
    """The `dask worker` command line (and environment additions) for this machine, as `hpt
    worker SCHEDULER` runs it: one thread per usable CPU, resources CPU=<cpus> and GPU=<gpus> as
    hpt_cli.devices.inventory.detect() sees them, CUDA_VISIBLE_DEVICES naming those GPUs (jobs get
    one of them each), the host name as the worker's name. Run it with `os.execvpe`."""
    import shutil
    import socket
    import sys

    if inventory is None:
        from hpt_cli.devices.inventory import detect

        inventory = detect()
    dask = shutil.which("dask") or str(Path(sys.executable).with_name("dask"))
    resources = f"CPU={inventory.cpus}" + (f",GPU={len(inventory.gpus)}" if inventory.gpus else "")
    argv = [dask, "worker", scheduler, "--nthreads", str(inventory.cpus), "--resources", resources,
            "--name", name or socket.gethostname()]
    env = {}
    if inventory.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in inventory.indices)
    return argv, env
