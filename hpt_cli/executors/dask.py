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
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpt_cli.errors import ExitCode, HptError
from hpt_cli.executors.base import Executor, Job, JobResult, JobStatus
from hpt_cli.storage.trial_log import append_note

_HANDSHAKE_MARGIN_S = 1.0  # the connect (handshake included) gets connect_timeout + at most this
_CLOSE_TIMEOUT_S = 5.0  # how long closing a client that failed to start may take
_BACKSTOP_S = 30.0  # client-side deadline: timeout + this after the task said it started
_CANCEL_GRACE_S = 10.0  # how long shutdown(cancel=True) waits for running tasks to kill their trials
_CAPACITY_TTL_S = 2.0  # how long a reading of the cluster's size is reused by free_slots()
_POLL_S = 1.0  # longest single wait on the futures, so deadlines are looked at
_NOTICE_EVERY_S = 60.0  # while no worker can run a trial, it is said again this often
_MAX_RESUBMITS = 5  # a job whose task the cluster keeps cancelling is given back as cancelled


class DaskUnavailable(HptError):
    """The scheduler cannot be reached, or no worker offers what the jobs need (exit 2)."""


class SchedulerLost(DaskUnavailable):
    """The client lost the scheduler mid-run and could not reconnect: the run ends, finished rows
    are kept and the lost trials have none, so the same command reruns them (exit 4, as storage
    that stays unreachable: the run's infrastructure, not a trial or the spec)."""

    exit_code = ExitCode.STORAGE


@dataclass
class _Running:
    job: Job
    future: Any  # distributed.Future
    slot: str
    submitted_at: float  # time.time()
    started: tuple[float, str] | None = None  # (time.monotonic(), worker) of the task's last start
    starts: list[tuple[float, str]] = field(default_factory=list)  # (time.time(), worker) of each start
    resubmits: int = 0  # times hpt submitted it again after the scheduler lost it
    resubmitted: bool = False  # submitted again and not started since
    device: str = ""  # "gpu1@host" / "cpu@host" of the task's last start; "": it never started


def _notice(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class DaskExecutor(Executor):
    """Runs jobs as tasks on the Dask cluster whose scheduler is at `scheduler`.

    slots: how many jobs run at once; default: what the cluster can hold now (the workers'
        threads, or with `resources_per_job` how many jobs the workers' resources fit),
        re-read every few seconds, so workers that join or leave change it.
    resources_per_job: Dask resources each task needs, e.g. {"CPU": 1} or {"GPU": 0.5}; Dask
        places tasks only on workers started with enough of them (`--resources "GPU=2"`).
    connect_timeout: seconds to reach the scheduler and to see a worker that can run the jobs;
        also how long the client tries to reconnect to a scheduler it lost.
    env: environment variables set in every job's process (OMP_NUM_THREADS, ...), on top of the
        Dask worker's own environment.
    imports: modules the jobs import ("pkg.module" of a 'pkg.module:function' architecture):
        `start()` refuses workers that cannot find them, as it refuses another hpt version.
    notify: called with a line to show the user (no worker can run a trial now, and when one
        can again); default: stderr.
    devices: slot -> "gpu1@host" / "cpu@host" of the job that slot ran last, set before each of
        its results is handed out (what the rows' `device` column holds): where the job's task
        last started, also for a timeout, a crash or a lost task; "" for one that never started.
    """

    def __init__(
        self,
        scheduler: str,
        slots: int | None = None,
        resources_per_job: Mapping[str, float] | None = None,
        connect_timeout: float = 10,
        env: Mapping[str, str] | None = None,
        imports: Sequence[str] = (),
        notify: Callable[[str], None] = _notice,
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
        self.imports = sorted({m for m in imports if m})
        self.notify = notify
        self.devices: dict[str, str] = {}
        self._client: Any = None
        self._event_name = f"hpt-cancel-{uuid.uuid4().hex}"
        self._running: dict[str, _Running] = {}  # job key -> running job
        self._start_events: deque[tuple[float, float, str, str, str]] = deque()  # filled on the client's loop
        self._done: list[JobResult] = []
        self._capacity = (0, -1e9)  # (slots, time.monotonic() when read)
        self._workers: dict[str, Any] = {}  # address -> the scheduler's info, as last read
        self._idle_since: float | None = None  # time.monotonic() since no worker can run a job
        self._noticed_at = -1e9
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
            self._subscribe()
            self._await_capacity()
            self._check_workers()
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
        future = self._submit_task(job)
        used = {r.slot for r in self._running.values()}
        slot = next(f"w{i}" for i in range(len(used) + 1) if f"w{i}" not in used)
        self._running[job.key] = _Running(job, future, slot, time.time())

    def free_slots(self) -> int:
        if not self._started or self._closed:
            return 0
        self._check_client()
        if self._client.status != "running":  # reconnecting: nothing can be submitted now
            return 0
        return max(0, self._slot_count() - len(self._running))

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self._collect()
            self._expire()
            if self._done or not self._running:
                if not self._done and self._started and not self._closed:
                    self._check_client()
                return self._take()
            now = time.monotonic()
            if end is not None and now >= end:
                return self._take()
            limits = [end, now + _POLL_S] + [self._deadline(r) for r in self._running.values()]
            remaining = max(0.0, min(t for t in limits if t is not None) - now)
            live = [r.future for r in self._running.values() if not r.future.done()]
            if live:
                self._wait_futures(live, remaining, "FIRST_COMPLETED")
            else:  # every task was lost with the scheduler and waits for the client to reconnect
                time.sleep(remaining)

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

    def _submit_task(self, job: Job) -> Any:
        from hpt_cli.executors._dask_task import PROTOCOL, run_job

        payload = pickle.dumps(job.payload, protocol=pickle.HIGHEST_PROTOCOL)
        key = f"hpt-{job.key}-{uuid.uuid4().hex[:12]}"
        _mark(job.log_path, key)  # before the task can start: its folder is this runner's
        return self._client.submit(
            run_job, job.key, job.func, payload, job.timeout, job.log_path, self.env,
            self.resources.get("GPU"), self._event_name, PROTOCOL,
            key=key, pure=False, resources=self.resources or None,
        )

    def _wait_futures(self, futures: list[Any], timeout: float, return_when: str) -> None:
        """Block until `futures` are done (all or the first) or `timeout` passes."""
        from distributed import wait as dask_wait

        try:
            with self._client.as_current():
                dask_wait(futures, timeout=timeout, return_when=return_when)
        except Exception:  # noqa: BLE001, S110 - a timeout, or a future the scheduler cancelled
            pass  # (FuturesCancelledError): _collect reports each future by its status

    # -- the cluster -----------------------------------------------------------------------------

    def _subscribe(self) -> None:
        """Hear each task start (again after a reconnect: a new scheduler knows no subscription)."""
        from hpt_cli.executors._dask_task import STARTED_TOPIC

        self._client.subscribe_topic(STARTED_TOPIC, self._on_started)

    def _check_client(self) -> None:
        """Raise SchedulerLost once the client gave up reconnecting to a scheduler it lost."""
        if self._client.status in ("closing", "closed"):
            raise SchedulerLost(
                f"lost the Dask scheduler at {self.scheduler} (no reconnect within "
                f"{self.connect_timeout:g} s); finished trials are kept and the lost ones have no row: "
                f"rerun the same command once the scheduler and its workers are back")

    def _cluster_capacity(self) -> int:
        """How many jobs the workers can hold now: threads, or whole fits of resources_per_job."""
        workers = self._client.scheduler_info(n_workers=-1).get("workers", {})
        self._workers = dict(workers)
        return sum(self._fits(info) for info in workers.values())

    def _fits(self, info: Mapping[str, Any]) -> int:
        """How many jobs a worker (the scheduler's info on it) can hold at once."""
        if not self.resources:
            return int(info.get("nthreads", 0))
        have = info.get("resources") or {}
        return min(int(have.get(name, 0) / need + 1e-9) for name, need in self.resources.items())

    def _slot_count(self) -> int:
        count, read_at = self._capacity
        if time.monotonic() - read_at > _CAPACITY_TTL_S and self._client.status == "running":
            try:
                count = self._cluster_capacity()
            except (OSError, TimeoutError):
                pass  # keep the last reading; the next call tries again
            self._capacity = (count, time.monotonic())
            self._say_if_idle(count)
        return count if self.slots is None else self.slots

    def _say_if_idle(self, capacity: int) -> None:
        """Say (once, then every _NOTICE_EVERY_S) that no worker can run a trial and hpt waits."""
        now = time.monotonic()
        if capacity > 0:
            if self._idle_since is not None:
                self.notify(f"dask: a worker that can run trials is back ({capacity} at a time); going on")
            self._idle_since = None
            return
        if self._idle_since is None:
            self._idle_since = now
        if now - self._noticed_at >= _NOTICE_EVERY_S:
            self._noticed_at = now
            waiting = f"; {len(self._running)} trial{'s' if len(self._running) != 1 else ''} waiting" \
                if self._running else ""
            self.notify(f"dask: {self._no_worker()} (for {now - self._idle_since:.0f} s); hpt waits for "
                        f"one{waiting}")

    def _no_worker(self) -> str:
        needs = ", ".join(f"{k}={v:g}" for k, v in self.resources.items())
        if not self._workers:
            return f"no Dask worker is connected to {self.scheduler}"
        return f"no Dask worker connected to {self.scheduler} offers the resources a trial needs ({needs})"

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
        if not self._workers:
            raise DaskUnavailable(f"no Dask worker is connected to the scheduler at {self.scheduler} (waited "
                                  f"{self.connect_timeout:g} s); start some with `hpt worker {self.scheduler}`")
        if needs:
            raise DaskUnavailable(
                f"{self._no_worker()}; start workers with e.g. `dask worker {self.scheduler} "
                f"--resources \"{needs.replace(', ', ',')}\"` (`hpt worker` does this)")
        raise DaskUnavailable(f"no Dask worker at {self.scheduler} has a thread for a trial")

    def _check_workers(self) -> None:
        """Every worker runs this hpt (version and protocol) and finds the modules the jobs import;
        else DaskUnavailable naming the workers, before any job runs."""
        from hpt_cli.executors._dask_task import PROTOCOL, probe

        hosts = [address for address, info in self._workers.items() if self._fits(info)]
        try:  # a worker that does not answer must not hang the start either
            answers = self._client.sync(self._client._run, probe, self.imports, workers=hosts,
                                        on_error="return", callback_timeout=self.connect_timeout)
        except TimeoutError:
            raise DaskUnavailable(f"the Dask workers at {self.scheduler} did not say within "
                                  f"{self.connect_timeout:g} s which hpt they run") from None
        version = _local_version()
        problems = []
        for address, answer in sorted(answers.items()):
            if isinstance(answer, BaseException):
                problems.append(f"{address} cannot run hpt's task ({_describe(answer)}): install hpt "
                                f"{version} in the worker's environment")
            elif (answer["version"], answer["protocol"]) != (version, PROTOCOL):
                problems.append(f"{address} runs hpt {answer['version']} (protocol {answer['protocol']}), "
                                f"this hpt is {version} (protocol {PROTOCOL}): install hpt {version} there")
            elif answer["missing"]:
                names = ", ".join(sorted(answer["missing"]))
                why = next(iter(answer["missing"].values()))
                problems.append(f"{address} cannot import {names} ({why}): put the folder that holds it on "
                                f"that worker's PYTHONPATH (or start the worker in it), or install it there")
        if problems:
            raise DaskUnavailable(f"Dask worker{'s' if len(problems) > 1 else ''} at {self.scheduler} cannot "
                                  f"run hpt trials: " + "; ".join(problems))

    # -- results ---------------------------------------------------------------------------------

    def _take(self) -> list[JobResult]:
        done, self._done = self._done, []
        return done

    def _collect(self) -> None:
        self._read_starts()
        for key, running in list(self._running.items()):
            future = running.future
            if future.status == "cancelled":  # not by hpt: hpt forgets the futures it cancels
                self._lost(key, running)
            elif future.done():
                self._forget(key)
                self._done.append(self._result_of(running))

    def _lost(self, key: str, running: _Running) -> None:
        """The scheduler dropped this task (restarted, or lost: its client cancels every future).
        Not the job's doing: submit it again once the client is back (no attempt of the job is
        spent), or hand it back cancelled (no row; a rerun runs it) when the client gave up."""
        state = self._client.status
        if state in ("connecting", "newly-created"):
            return  # looked at again once the client has reconnected or given up
        if state == "running" and running.resubmits < _MAX_RESUBMITS:
            self._subscribe()
            _unmark(running.job.log_path, running.future.key)
            running.future = self._submit_task(running.job)
            running.resubmits += 1
            running.resubmitted = True
            running.started = None
            return
        self._forget(key)
        self._done.append(self._ended(running, JobStatus.CANCELLED, f"the Dask scheduler at {self.scheduler} "
                                                                   "lost the task"))

    def _on_started(self, event: tuple[float, Any]) -> None:
        """A task began (or began again on another worker). Called on the client's event loop
        thread: only queue it; the caller's thread reads the queue (`_read_starts`)."""
        at, msg = event
        if isinstance(msg, dict) and "key" in msg:
            device = _device(str(msg.get("host") or "?"), list(msg.get("gpus") or []))
            self._start_events.append((time.monotonic(), at, msg["key"], str(msg.get("worker", "?")), device))

    def _read_starts(self) -> None:
        """Each start restarts the job's timeout backstop; a start after an earlier one (its worker
        was lost, or hpt submitted it again after the scheduler lost it) is said in the job's log."""
        while self._start_events:
            mono, at, task_key, worker, device = self._start_events.popleft()
            running = next((r for r in self._running.values() if r.future.key == task_key), None)
            if running is None:
                continue
            if running.starts and running.job.log_path is not None:
                _, before = running.starts[-1]
                why = ("the Dask scheduler lost its task" if running.resubmitted
                       else f"its Dask worker {before} was lost")
                append_note(running.job.log_path, f"{why}; the trial runs again from the start on {worker}")
            running.started = (mono, worker)
            running.starts.append((at, worker))
            running.device = device
            running.resubmitted = False

    def _deadline(self, running: _Running) -> float | None:
        """Past this the job is a timeout even if its worker never said so (it stopped answering).
        The worker enforces the real timeout; this backstop counts from the last task start."""
        if running.job.timeout is None or running.started is None:
            return None
        return running.started[0] + running.job.timeout + _BACKSTOP_S

    def _processing(self, running: _Running, where: dict | None = None) -> bool:
        """Whether the scheduler still has the job's task processing on the worker that started it.
        `where`: the scheduler's {worker: [keys]} already asked for (one request for many jobs)."""
        assert running.started is not None
        if where is None:
            where = self._where()
            if where is None:  # the scheduler cannot say: keep the backstop
                return True
        return running.future.key in (where.get(running.started[1]) or ())

    def _where(self) -> dict | None:
        """The scheduler's {worker: [keys]} (a worker that left is not in it); None if it cannot say."""
        try:
            return self._client.processing()
        except Exception:  # noqa: BLE001 - see the callers
            return None

    def _forget(self, key: str) -> _Running:
        running = self._running.pop(key)
        _unmark(running.job.log_path, running.future.key)
        return running

    def _expire(self) -> None:
        now = time.monotonic()
        for key, running in list(self._running.items()):
            deadline = self._deadline(running)
            if deadline is None or now < deadline:
                continue
            if not self._processing(running):  # its worker left: the clock starts again on the next one
                running.started = None
                continue
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
            self.devices[running.slot] = _device(out.get("host") or "?", out.get("gpus") or [])
            started_at = running.starts[0][0] if len(running.starts) > 1 else out["started_at"]
            return JobResult(
                running.job.key, JobStatus(out["status"]), out["value"], out["error"],
                out["traceback"], running.slot, out["pid"], started_at or running.submitted_at,
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
        return self._ended(running, JobStatus.CRASHED, f"the Dask task was {future.status}")

    def _ended(self, running: _Running, status: JobStatus, error: str,
               traceback: str | None = None) -> JobResult:
        started_at = running.starts[0][0] if running.starts else running.submitted_at
        self.devices[running.slot] = running.device  # where it last started ("" if it never did)
        return JobResult(running.job.key, status, error=error, traceback=traceback,
                         worker=running.slot, started_at=started_at, ended_at=time.time())

    def _cancel_all(self) -> None:
        """Tell every running task to kill its trial and collect what they report; tasks not
        running on a worker (queued, or lost with their worker or the scheduler) are cancelled
        at once."""
        self._read_starts()
        if not self._running:
            return
        usable = self._client.status == "running"
        started = [r for r in self._running.values() if usable and not r.future.done() and r.started is not None]
        where = self._where() if started else None  # one request, not one per job
        running = [r for r in started if where is None or self._processing(r, where)]
        event = None
        if running:
            from distributed import Event

            event = Event(self._event_name, client=self._client)
            try:
                event.set()
            except OSError:
                event = None  # the scheduler is gone: nothing runs there any more
            else:
                self._wait_futures([r.future for r in running], _CANCEL_GRACE_S, "ALL_COMPLETED")
        for key, item in list(self._running.items()):
            self._forget(key)
            if item.future.done() and item.future.status != "cancelled":
                result = self._result_of(item)
            else:
                if usable:
                    item.future.cancel()
                result = self._ended(item, JobStatus.CANCELLED, "cancelled by shutdown")
            self._done.append(result)
        if event is not None:
            try:
                event.clear()  # removes the event from the scheduler
            except OSError:
                pass


def _local_version() -> str:
    import hpt_cli

    return hpt_cli.__version__


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


def _device(host: str, gpus: list[str]) -> str:
    """The `device` label of a task that ran on `host` with `gpus`: gpu0,1@host or cpu@host."""
    return f"gpu{','.join(gpus)}@{host}" if gpus else f"cpu@{host}"


def _mark(log_path: str | None, task_key: str) -> None:
    """Write the task's `shared_marker` into the job's log folder, where that exists here: a worker
    that sees it writes into the folder directly; one that does not stages the files and ships
    them back. A dot file: the gs:// mirror never uploads it."""
    from hpt_cli.executors._dask_task import shared_marker

    if log_path is None:
        return
    with contextlib.suppress(OSError):  # no folder here: the worker stages it, as on another machine
        (Path(log_path).parent / shared_marker(task_key)).touch()


def _unmark(log_path: str | None, task_key: str) -> None:
    from hpt_cli.executors._dask_task import shared_marker

    if log_path is not None:
        with contextlib.suppress(OSError):
            (Path(log_path).parent / shared_marker(task_key)).unlink()


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
    hpt_cli.devices.inventory.detect() sees them, CUDA_VISIBLE_DEVICES naming those GPUs, and as the
    worker's name `name` or <host name>-<pid> (the pid `os.execvpe` keeps: two workers on one box
    get two names). Run it with `os.execvpe`."""
    import os
    import shutil
    import socket

    if inventory is None:
        from hpt_cli.devices.inventory import detect

        inventory = detect()
    dask = shutil.which("dask") or str(Path(sys.executable).with_name("dask"))
    resources = f"CPU={inventory.cpus}" + (f",GPU={len(inventory.gpus)}" if inventory.gpus else "")
    argv = [dask, "worker", scheduler, "--nthreads", str(inventory.cpus), "--resources", resources,
            "--name", name or f"{socket.gethostname()}-{os.getpid()}"]
    env = {}
    if inventory.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in inventory.indices)
    return argv, env
