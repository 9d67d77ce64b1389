"""The contract every Executor passes. Reuse it for a new executor:

    from tests.executors.test_contract import ExecutorContract

    class TestMyExecutorContract(ExecutorContract):
        def make_executor(self, workers: int) -> Executor:
            return MyExecutor(workers)  # not started

Jobs come from tests/executors/jobs.py, which workers must be able to import as
`tests.executors.jobs`. Nothing here depends on the executor being local except that the process
which ran a cancelled job must be gone afterwards.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from hpt_cli.executors import Executor, Job, JobResult, JobStatus, LocalExecutor

pytestmark = pytest.mark.slow

JOBS = "tests.executors.jobs"


def job(key: str, name: str, payload=None, **kwargs) -> Job:
    return Job(key=key, func=f"{JOBS}:{name}", payload=payload, **kwargs)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def alive(pid: int) -> bool:
    """Whether `pid` is a live process. A zombie counts as dead: whoever adopts an orphan (PID 1
    or a subreaper, outside the executor's control) may be slow to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def read_pids(path: Path, timeout: float = 5.0) -> list[int]:
    """The pids a job wrote to `path`, once it has written them."""
    assert wait_until(lambda: path.exists() and path.read_text().strip() != "", timeout)
    return [int(p) for p in path.read_text().split()]


def run_all(ex: Executor, jobs: Iterable[Job], timeout: float = 20.0) -> list[JobResult]:
    """Drive `ex` like the runner does until every job has a result."""
    pending = list(jobs)
    expected = len(pending)
    results: list[JobResult] = []
    end = time.monotonic() + timeout
    while len(results) < expected:
        assert time.monotonic() < end, f"only {len(results)} of {expected} results in {timeout} s"
        while pending and ex.free_slots() > 0:
            ex.submit(pending.pop(0))
        results += ex.wait(timeout=0.5)
    return results


class ExecutorContract:
    """Tests any Executor must pass. Subclasses define `make_executor`."""

    def make_executor(self, workers: int) -> Executor:
        raise NotImplementedError

    @pytest.fixture
    def make(self):
        """make(workers) -> a started executor, cancelled at the end of the test."""
        made: list[Executor] = []

        def make(workers: int = 2) -> Executor:
            ex = self.make_executor(workers)
            ex.start()
            made.append(ex)
            return ex

        yield make
        for ex in made:
            ex.shutdown(cancel=True)

    def test_ok_results_carry_values(self, make):
        ex = make(2)
        results = {r.key: r for r in run_all(ex, [job(f"k{n}", "square", n) for n in range(3)])}
        assert {k: r.value for k, r in results.items()} == {"k0": 0, "k1": 1, "k2": 4}
        for r in results.values():
            assert r.status == JobStatus.OK and r.status == "ok" and r.ok
            assert r.error is None and r.traceback is None
            assert r.worker in {"w0", "w1"}
            assert isinstance(r.pid, int)
            assert 0 < r.started_at <= r.ended_at <= time.time()

    def test_more_jobs_than_slots_each_complete_once(self, make):
        ex = make(2)
        assert ex.free_slots() == 2
        results = run_all(ex, [job(f"k{n}", "echo", n) for n in range(25)])
        assert Counter(r.key for r in results) == Counter(f"k{n}" for n in range(25))
        assert all(r.value == int(r.key[1:]) for r in results)
        assert ex.free_slots() == 2
        assert ex.wait(timeout=0.1) == []
        assert ex.wait() == []  # nothing runs: returns at once

    def test_exception_is_a_failed_result_with_traceback(self, make):
        ex = make(1)
        [r] = run_all(ex, [job("bad", "raise_value_error", 3)])
        assert r.status == "failed"
        assert r.error == "ValueError: bad lr 3"
        assert r.traceback.startswith("Traceback (most recent call last)")
        assert "raise_value_error" in r.traceback and "second line" in r.traceback
        [after] = run_all(ex, [job("next", "square", 5)])
        assert after.status == "ok" and after.value == 25

    def test_unknown_function_is_a_failed_result(self, make):
        ex = make(1)
        [r] = run_all(ex, [Job("nomod", "tests.executors.no_such_module:f")])
        assert r.status == "failed" and r.error.startswith("ModuleNotFoundError: ")
        [r] = run_all(ex, [job("noattr", "no_such_function")])
        assert r.status == "failed" and r.error.startswith("AttributeError: ")

    def test_timeout_kills_the_job_and_the_slot_is_reused(self, make, tmp_path):
        ex = make(1)
        pid_file = tmp_path / "pid"
        started = time.monotonic()
        payload = {"seconds": 30, "pid_file": str(pid_file)}
        [r] = run_all(ex, [job("slow", "sleep", payload, timeout=0.5)])
        assert time.monotonic() - started < 5
        assert r.status == "timeout" and r.error == "timed out after 0.5 s"
        assert r.value is None and r.ended_at >= r.started_at
        [pid] = read_pids(pid_file)
        assert wait_until(lambda: not alive(pid))
        assert ex.free_slots() == 1
        [after] = run_all(ex, [job("after", "square", 3, timeout=5)])
        assert after.status == "ok" and after.value == 9

    def test_log_gets_stdout_stderr_and_child_output(self, make, tmp_path):
        ex = make(1)
        log = tmp_path / "job.log"
        log.write_text("earlier\n")
        [r] = run_all(ex, [job("out", "write_output", log_path=str(log))])
        assert r.status == "ok" and r.value == "written"
        text = log.read_text()
        assert text.startswith("earlier\n")  # appended, not truncated
        for line in ("from print", "from fd 1", "from fd 2", "from child"):
            assert line in text.splitlines()
        [r] = run_all(ex, [job("bad", "raise_value_error", 1, log_path=str(log))])
        assert r.traceback in log.read_text()

    def test_wait_returns_empty_when_its_timeout_passes(self, make):
        ex = make(1)
        ex.submit(job("slow", "sleep", {"seconds": 2}))
        started = time.monotonic()
        assert ex.wait(timeout=0.2) == []
        assert 0.15 < time.monotonic() - started < 1.5
        assert ex.free_slots() == 0

    def test_submit_checks_slots_and_keys(self, make):
        ex = make(2)
        ex.submit(job("a", "sleep", {"seconds": 2}))
        with pytest.raises(ValueError):
            ex.submit(job("a", "noop"))
        ex.submit(job("b", "sleep", {"seconds": 2}))
        assert ex.free_slots() == 0
        with pytest.raises(RuntimeError):
            ex.submit(job("c", "noop"))

    def test_cancel_returns_cancelled_results_and_leaves_no_process(self, make, tmp_path):
        ex = make(2)
        files = [tmp_path / "a.pid", tmp_path / "b.pid"]
        for key, f in zip("ab", files):
            ex.submit(job(key, "sleep", {"seconds": 60, "pid_file": str(f)}))
        pids = [read_pids(f)[0] for f in files]
        results = ex.shutdown(cancel=True)
        assert sorted(r.key for r in results) == ["a", "b"]
        assert all(r.status == "cancelled" and r.error for r in results)
        assert wait_until(lambda: not any(alive(p) for p in pids))
        assert ex.shutdown(cancel=True) == []  # idempotent
        with pytest.raises(RuntimeError):
            ex.submit(job("late", "noop"))

    def test_a_chosen_slot_runs_the_job_where_the_executor_lets_the_caller_choose(self, make):
        ex = make(2)
        names = ex.free_slot_names()
        if names is None:  # it places jobs itself (Dask): the caller never passes a slot
            assert ex.free_slots() == 2
            return
        results: list = []
        ex.submit(job("chosen", "sleep", {"seconds": 0.5}), slot=names[-1])
        assert names[-1] not in ex.free_slot_names()
        with pytest.raises(RuntimeError):
            ex.submit(job("busy", "noop"), slot=names[-1])
        with pytest.raises(ValueError):
            ex.submit(job("nowhere", "noop"), slot="no-such-slot")
        assert wait_until(lambda: bool(results.extend(ex.wait(timeout=0.2)) or results), timeout=20.0)
        (result,) = results
        assert (result.key, result.status, result.worker) == ("chosen", "ok", names[-1])

    def test_shutdown_without_cancel_lets_running_jobs_finish(self, make):
        ex = make(2)
        ex.submit(job("a", "sleep", {"seconds": 0.3}))
        ex.submit(job("b", "square", 4))
        finished = ex.shutdown(cancel=False)
        assert sorted(r.key for r in finished) == ["a", "b"]  # each job exactly once
        results = {r.key: r for r in finished}
        assert results["a"].status == "ok" and results["a"].value == 0.3
        assert results["b"].status == "ok" and results["b"].value == 16


class TestLocalExecutorContract(ExecutorContract):
    def make_executor(self, workers: int) -> Executor:
        return LocalExecutor(workers)


class TestLocalIsolatedExecutorContract(ExecutorContract):
    def make_executor(self, workers: int) -> Executor:
        return LocalExecutor(workers, isolate=True)
