"""The Dask path when the cluster changes under a run: the scheduler restarted or gone, every
worker gone, workers that cannot run hpt trials, and what `hpt worker` starts. Real `dask
scheduler` / `dask worker` / `hpt worker` processes on 127.0.0.1 (tests/executors/dask_cluster.py),
each cluster stopped at the end of its test.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from hpt_cli.errors import ExitCode
from hpt_cli.executors import dask as dask_module
from hpt_cli.executors.base import Executor, JobResult
from hpt_cli.executors.dask import DaskExecutor, DaskUnavailable, SchedulerLost
from hpt_cli.runner import metric_columns
from hpt_cli.runner.loop import POLL_S, Runner
from hpt_cli.runner.run_id import run_id as make_run_id
from hpt_cli.search import make_searcher
from hpt_cli.spec.parse import parse_spec
from hpt_cli.storage import open_store
from hpt_cli.storage.results import read_rows
from tests.executors.dask_cluster import DaskCluster
from tests.executors.test_contract import alive, job, read_pids, run_all, wait_until
from tests.helpers import HPT

SLEEPY = "tests.executors.dask_cluster:sleepy"


def sleepy_spec(name: str, values: list[int], seconds: float, timeout: str = "60s") -> dict:
    return {"name": name, "architecture": SLEEPY, "date-range": [["2015-01-01", "2015-02-01"]],
            "parameters": {"seconds": seconds, "value": values}, "trial": {"retries": 0, "timeout": timeout}}


class Hook:
    """An observer that calls `on_tick(running)` on every tick of the runner's loop."""

    def __init__(self, on_tick):
        self.on_tick = on_tick

    def __getattr__(self, name):
        return lambda *args: None

    def tick(self, running):
        self.on_tick(running)


def make_runner(out: Path, body: dict, executor: Executor, observers=(), stop=None) -> Runner:
    spec = parse_spec(json.dumps(body))
    rid = make_run_id(spec)
    return Runner(spec, rid, make_searcher(spec), executor, open_store(str(out), rid), metric_columns(spec), 2,
                  observers=list(observers), stop=stop)


def started_pids(out: Path) -> list[int]:
    return [int(p.read_text()) for p in out.glob("*/trials/*/pid") if p.read_text().strip()]


def rows_of(out: Path) -> list[dict[str, str]]:
    files = list(out.glob("*/results.csv"))
    return read_rows(files[0].read_text()) if files else []


def logs_of(out: Path) -> list[str]:
    return [p.read_text() for p in sorted(out.glob("*/trials/*/log.txt"))]


# -- the runner's loop ------------------------------------------------------------------------------

class _Idle(Executor):
    """Nothing can run: no free slot, nothing running; `wait` returns at once, as DaskExecutor's
    does with no worker connected. The fifth wait sets the run's stop event."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.waits = 0

    def start(self):
        pass

    def submit(self, job):
        raise AssertionError("no slot was free")

    def free_slots(self):
        return 0

    def wait(self, timeout=None) -> list[JobResult]:
        self.waits += 1
        if self.waits >= 5:
            self.stop.set()
        return []

    def shutdown(self, cancel=True):
        return []


class _RecordingStop(threading.Event):
    """The run's stop event: records each wait on it, and returns at once."""

    def __init__(self):
        super().__init__()
        self.waited: list[float | None] = []

    def wait(self, timeout=None):
        self.waited.append(timeout)
        return self.is_set()


def test_the_runner_waits_poll_s_when_nothing_runs_and_nothing_can_be_dispatched(tmp_path):
    stop = _RecordingStop()
    executor = _Idle(stop)
    spec = parse_spec(json.dumps({"architecture": "branin", "parameters": {"x1": [1.0, 2.0], "x2": 2.0}}))
    rid = make_run_id(spec)
    runner = Runner(spec, rid, make_searcher(spec), executor, open_store(str(tmp_path), rid),
                    metric_columns(spec), 1, stop=stop)
    result = runner.run()
    assert result.exit_code == ExitCode.INTERRUPTED
    assert stop.waited == [POLL_S] * 5  # each empty turn of the loop waits, none spins


# -- the scheduler restarted or gone (finding 1) --------------------------------------------------

def test_trials_lost_with_a_restarted_scheduler_run_again_and_get_one_ok_row_each(tmp_path):
    out = tmp_path / "out"
    with DaskCluster(tmp_path / "cluster", workers=1) as cluster:
        restarted = []

        def restart_once(running):
            if restarted or len(started_pids(out)) < 2:
                return
            cluster.kill_scheduler()  # as systemd restarting it: the same port a moment later
            for pid in cluster.worker_pids():
                cluster.kill_worker(pid)  # its workers went with it (or would try to reconnect)
            for path in out.glob("*/trials/*/pid"):
                path.write_text("")
            cluster.start_scheduler()
            cluster.add_worker("after-restart")
            restarted.append(True)

        executor = DaskExecutor(cluster.address, resources_per_job={"CPU": 1}, connect_timeout=20)
        result = make_runner(out, sleepy_spec("restart", [1, 2], 2.0), executor, [Hook(restart_once)]).run()
    assert restarted
    rows = rows_of(out)
    assert result.exit_code == ExitCode.OK, rows
    assert sorted((r["value"], r["status"], r["attempts"]) for r in rows) == [("1", "ok", "1"), ("2", "ok", "1")]
    assert all("hpt: the Dask scheduler lost its task; the trial runs again from the start on tcp://" in text
               for text in logs_of(out))


def test_a_scheduler_that_stays_gone_ends_the_run_with_exit_4_and_no_rows_for_the_lost_trials(tmp_path):
    out = tmp_path / "out"
    with DaskCluster(tmp_path / "cluster", workers=1) as cluster:
        stop = threading.Event()
        killed: list[float] = []

        def kill_once(running):
            if not killed and len(started_pids(out)) == 2:
                cluster.kill_scheduler()
                killed.append(time.monotonic())
            elif killed and time.monotonic() > killed[0] + 120:
                stop.set()  # the run did not end by itself: end the test (it then fails) instead of hanging

        executor = DaskExecutor(cluster.address, resources_per_job={"CPU": 1}, connect_timeout=2)
        runner = make_runner(out, sleepy_spec("gone", [1, 2, 3], 30.0), executor, [Hook(kill_once)], stop)
        with pytest.raises(SchedulerLost) as info:
            runner.run()
    assert info.value.exit_code == ExitCode.STORAGE
    assert str(info.value) == (f"lost the Dask scheduler at {cluster.address} (no reconnect within 2 s); finished "
                               "trials are kept and the lost ones have no row: rerun the same command once the "
                               "scheduler and its workers are back")
    assert rows_of(out) == []  # the same command reruns them
    assert runner.counts["cancelled"] == 2


# -- every worker gone (findings 2, 7, 8) ------------------------------------------------------------

def test_a_trial_whose_only_worker_died_is_not_timed_out_and_runs_on_the_next_worker(tmp_path, monkeypatch):
    """No wall-clock margins: the trial's timeout (60 s) is far above its 2 s sleep. Once the
    scheduler has dropped the dead worker, the client-side deadline is moved into the past
    (the hook runs on the runner's thread, so the executor cannot look meanwhile); the test then
    waits until the executor has seen it pass and restarted the clock (`started` is None) instead
    of timing the trial out, and only then adds the next worker, with the backstop as shipped."""
    out = tmp_path / "out"
    notes: list[str] = []
    with DaskCluster(tmp_path / "cluster", workers=1, nthreads=1, resources="CPU=1") as cluster:
        state: dict[str, float] = {}
        executor = DaskExecutor(cluster.address, resources_per_job={"CPU": 1}, notify=notes.append)
        backstop = dask_module._BACKSTOP_S

        def kill_then_let_the_deadline_pass(running):
            if "killed" not in state and started_pids(out):
                cluster.kill_worker(cluster.worker_pids()[0])
                state["killed"] = time.monotonic()
                state["killed_at"] = time.time()
                assert wait_until(lambda: cluster.worker_count() == 0, timeout=30)
                monkeypatch.setattr(dask_module, "_BACKSTOP_S", -60.0)  # the deadline: the task's start
            elif "killed" in state and "added" not in state:
                [job] = executor._running.values()
                waited = time.monotonic() - state["killed"] > 120  # bounded: the asserts below then fail
                if (job.started is None and notes) or waited:  # the deadline passed, no timeout was given
                    state["reset"] = float(job.started is None)
                    monkeypatch.setattr(dask_module, "_BACKSTOP_S", backstop)
                    cluster.add_worker("second")
                    state["added"] = time.monotonic()

        result = make_runner(out, sleepy_spec("lost", [1], 2.0, timeout="60s"), executor,
                             [Hook(kill_then_let_the_deadline_pass)]).run()
    assert state["reset"] == 1.0  # the executor saw the deadline pass while no worker had the task
    [row] = rows_of(out)
    assert (row["status"], row["attempts"], result.exit_code) == ("ok", "1", ExitCode.OK)
    assert f"dask: no Dask worker is connected to {cluster.address}" in notes[0]
    assert "hpt waits for one; 1 trial waiting" in notes[0]
    assert notes[-1] == "dask: a worker that can run trials is back (1 at a time); going on"
    [text] = logs_of(out)
    assert text.count("[hpt] dask worker") == 2
    assert "was lost; the trial runs again from the start on tcp://127.0.0.1:" in text
    started = datetime.fromisoformat(row["started_at"].replace("Z", "+00:00")).timestamp()
    assert started < state["killed_at"]  # the row counts from the first start, not from the rerun


def test_shutdown_cancels_at_once_a_task_that_runs_on_no_worker(tmp_path):
    with DaskCluster(tmp_path / "cluster", workers=1) as cluster:
        ex = DaskExecutor(cluster.address, slots=1)
        ex.start()
        pid_file = tmp_path / "pid"
        ex.submit(job("orphan", "sleep", {"seconds": 60, "pid_file": str(pid_file)}, timeout=120))
        [trial_pid] = read_pids(pid_file)
        cluster.kill_worker(cluster.worker_pids()[0])
        assert wait_until(lambda: not alive(trial_pid))
        assert wait_until(lambda: cluster.worker_count() == 0)
        waited = []
        ex._wait_futures = lambda futures, timeout, how: waited.append((len(futures), timeout, how))
        [r] = ex.shutdown(cancel=True)
    assert r.status == "cancelled"
    assert waited == []  # no grace for a task no worker runs


# -- workers that cannot run hpt trials (finding 3) --------------------------------------------------

def test_workers_of_another_hpt_version_or_without_the_spec_s_module_are_refused_at_start(tmp_path, monkeypatch):
    with DaskCluster(tmp_path / "cluster", workers=1) as cluster:
        [address] = _worker_addresses(cluster)
        ex = DaskExecutor(cluster.address, resources_per_job={"CPU": 1}, imports=["tests.executors.dask_cluster"])
        ex.start()  # the workers run in the repository root: `tests` is there
        ex.shutdown()
        ex = DaskExecutor(cluster.address, resources_per_job={"CPU": 1}, imports=["no_such_module_here"])
        with pytest.raises(DaskUnavailable) as info:
            ex.start()
        assert str(info.value).startswith(
            f"Dask worker at {cluster.address} cannot run hpt trials: {address} cannot import no_such_module_here "
            f"(no module named 'no_such_module_here' on its sys.path or in its working folder ")
        assert str(info.value).endswith("put the folder that holds it on that worker's PYTHONPATH (or start the "
                                        "worker in it), or install it there")
        monkeypatch.setattr(dask_module, "_local_version", lambda: "9.9.9")
        ex = DaskExecutor(cluster.address, resources_per_job={"CPU": 1})
        with pytest.raises(DaskUnavailable) as info:
            ex.start()
        assert info.value.exit_code == ExitCode.USAGE
        assert f"{address} runs hpt " in str(info.value)
        assert str(info.value).endswith("this hpt is 9.9.9 (protocol 3): install hpt 9.9.9 there")


def test_a_worker_without_hpt_is_refused_at_start_not_waited_for(tmp_path):
    stub = tmp_path / "stub" / "hpt_cli"  # what this worker imports as hpt_cli: not hpt
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('hpt is not installed here')\n")
    with DaskCluster(tmp_path / "cluster", workers=1, env={"PYTHONPATH": str(stub.parent)}) as cluster:
        [address] = _worker_addresses(cluster)
        with pytest.raises(DaskUnavailable) as info:
            DaskExecutor(cluster.address, resources_per_job={"CPU": 1}).start()
    assert str(info.value).startswith(f"Dask worker at {cluster.address} cannot run hpt trials: {address} cannot "
                                      "run hpt's task (")
    assert str(info.value).endswith("install hpt " + dask_module._local_version() + " in the worker's environment")


def _worker_addresses(cluster: DaskCluster) -> list[str]:
    from distributed import Client

    with Client(cluster.address, timeout=10, set_as_default=False) as client:
        return sorted(client.scheduler_info(n_workers=-1)["workers"])


# -- GPUs and `hpt worker` (findings 5, 6, 9) --------------------------------------------------------

def test_two_hpt_workers_on_one_box_join_and_a_two_gpu_trial_gets_both_gpus(tmp_path):
    with DaskCluster(tmp_path / "cluster", workers=0) as cluster:
        fake = {"HPT_FAKE_GPUS": "2x80GiB"}
        cluster.add_worker("hpt-worker-a", [HPT, "worker", cluster.address], fake)
        cluster.add_worker("hpt-worker-b", [HPT, "worker", cluster.address], fake)
        cluster.wait_for_workers(2)  # the second is not refused for its name
        host = socket.gethostname()
        with DaskExecutor(cluster.address, resources_per_job={"CPU": 1, "GPU": 2}) as ex:
            assert ex.free_slots() == 2  # GPU=2 on each
            [r] = run_all(ex, [job("two", "getenv", ["CUDA_VISIBLE_DEVICES", "HPT_DEVICE"])])
            assert r.value == {"CUDA_VISIBLE_DEVICES": "0,1", "HPT_DEVICE": "cuda:0"}
            assert ex.devices[r.worker] == f"gpu0,1@{host}"
        with DaskExecutor(cluster.address, resources_per_job={"CPU": 1, "GPU": 0.5}) as ex:
            [r] = run_all(ex, [job("half", "getenv", ["CUDA_VISIBLE_DEVICES"])])
            assert r.value == {"CUDA_VISIBLE_DEVICES": "0"}
            assert ex.devices[r.worker] == f"gpu0@{host}"
        with DaskExecutor(cluster.address, resources_per_job={"CPU": 1}) as ex:
            [r] = run_all(ex, [job("cpu", "square", 3)])
            assert ex.devices[r.worker] == f"cpu@{host}"


def test_with_no_worker_connected_the_start_up_error_says_so(tmp_path):
    with DaskCluster(tmp_path / "cluster", workers=0) as cluster:
        with pytest.raises(DaskUnavailable) as info:
            DaskExecutor(cluster.address, resources_per_job={"CPU": 1}, connect_timeout=0.5).start()
    assert str(info.value) == (f"no Dask worker is connected to the scheduler at {cluster.address} (waited 0.5 s); "
                               f"start some with `hpt worker {cluster.address}`")
