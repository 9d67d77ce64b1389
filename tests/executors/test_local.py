"""What only the local executor promises: crashes, process groups, orphans, isolate, slot env."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hpt_cli.executors import Job, LocalExecutor
from tests.executors.test_contract import alive, job, read_pids, run_all, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def make():
    made: list[LocalExecutor] = []

    def make(workers: int = 1, **kwargs) -> LocalExecutor:
        ex = LocalExecutor(workers, **kwargs)
        ex.start()
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.shutdown(cancel=True)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="workers must be >= 1"):
        LocalExecutor(0)
    with pytest.raises(ValueError, match="one mapping per worker"):
        LocalExecutor(2, slot_env=[{}])
    with pytest.raises(ValueError, match="package.module:function"):
        Job("k", "no_colon")
    with pytest.raises(ValueError, match="timeout"):
        Job("k", "m:f", timeout=0)
    ex = LocalExecutor(1)
    assert ex.free_slots() == 0
    with pytest.raises(RuntimeError):
        ex.submit(job("k", "noop"))
    assert ex.shutdown() == []


@pytest.mark.slow
def test_workers_are_warm_and_import_once(make):
    ex = make(1)
    results = run_all(ex, [job(f"k{n}", "count_calls") for n in range(4)])
    assert [r.value for r in results] == [1, 2, 3, 4]
    assert len({r.pid for r in results}) == 1


@pytest.mark.slow
def test_isolate_gives_each_job_a_fresh_process(make):
    ex = make(1, isolate=True)
    results = run_all(ex, [job(f"k{n}", "count_calls") for n in range(4)])
    assert [r.value for r in results] == [1, 1, 1, 1]
    assert len({r.pid for r in results}) == 4
    assert wait_until(lambda: not any(alive(r.pid) for r in results))


@pytest.mark.slow
def test_slot_env_reaches_each_slot_worker(make):
    env = [{"HPT_SLOT": "0", "OMP_NUM_THREADS": "1"}, {"HPT_SLOT": "1", "OMP_NUM_THREADS": "2"}]
    ex = make(2, slot_env=env)
    ex.submit(job("a", "getenv", ["HPT_SLOT", "OMP_NUM_THREADS"]))
    ex.submit(job("b", "getenv", ["HPT_SLOT", "OMP_NUM_THREADS"]))
    results = ex.wait(timeout=5)
    while len(results) < 2:
        results += ex.wait(timeout=5)
    for r in results:
        slot = int(r.worker[1:])
        assert r.value == env[slot]
    assert "HPT_SLOT" not in os.environ  # the runner's own environment is untouched


@pytest.mark.slow
def test_workers_see_the_runner_sys_path(make):
    [r] = run_all(make(1), [job("path", "get_sys_path")])
    expected = [p or os.getcwd() for p in sys.path]
    assert r.value[: len(expected)] == expected


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "payload", "error"),
    [
        ("segfault", None, "worker died with signal SIGSEGV"),
        ("exit_hard", 3, "worker exited with code 3"),
        ("sigkill", None, "worker died with signal SIGKILL (out of memory? the kernel's OOM killer sends SIGKILL)"),
    ],
)
def test_a_dead_worker_is_a_crashed_result_and_is_replaced(make, tmp_path, name, payload, error):
    ex = make(1)
    [before] = run_all(ex, [job("before", "getpid")])
    log = tmp_path / "crash.log"
    [r] = run_all(ex, [job("crash", name, payload, log_path=str(log))])
    assert r.status == "crashed" and r.error == error and r.pid == before.value
    if name == "segfault":
        assert "Segmentation fault" in log.read_text()  # faulthandler wrote to the job's fd 2
    assert ex.free_slots() == 1
    [after] = run_all(ex, [job("after", "getpid")])
    assert after.status == "ok" and after.value != before.value
    assert not alive(before.value)


@pytest.mark.slow
def test_timeout_kills_the_jobs_child_processes(make, tmp_path):
    ex = make(1)
    pid_file = tmp_path / "pids"
    hang = job("hang", "spawn_child_and_hang", {"pid_file": str(pid_file)}, timeout=1)
    [r] = run_all(ex, [hang])
    assert r.status == "timeout"
    worker, child = read_pids(pid_file)
    assert wait_until(lambda: not alive(worker) and not alive(child))


@pytest.mark.slow
def test_cancel_kills_the_jobs_child_processes(make, tmp_path):
    ex = make(1)
    pid_file = tmp_path / "pids"
    ex.submit(job("hang", "spawn_child_and_hang", {"pid_file": str(pid_file)}))
    worker, child = read_pids(pid_file)
    [r] = ex.shutdown(cancel=True)
    assert r.status == "cancelled" and r.key == "hang"
    assert wait_until(lambda: not alive(worker) and not alive(child))


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_each_worker_leads_its_own_session_and_ignores_stop_signals(make, tmp_path, signum):
    # Ctrl-C, a Jenkins abort or a systemd stop signals every process of the tree: the runner decides
    ex = make(1)
    pid_file = tmp_path / "pid"
    ex.submit(job("s", "sleep", {"seconds": 0.5, "pid_file": str(pid_file)}))
    [pid] = read_pids(pid_file)
    assert os.getpgid(pid) == pid and os.getsid(pid) == pid
    assert os.getpgid(pid) != os.getpgid(0)
    os.kill(pid, signum)
    [r] = ex.wait(timeout=5)
    assert r.status == "ok" and r.value == 0.5 and r.pid == pid
    [after] = run_all(ex, [job("b", "getpid")])
    assert after.value == pid  # and the worker serves on


@pytest.mark.slow
def test_a_worker_killed_while_idle_is_replaced_at_submit(make):
    ex = make(1)
    [first] = run_all(ex, [job("a", "getpid")])
    os.kill(first.value, signal.SIGKILL)
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    assert wait_until(lambda: os.waitid(os.P_PID, first.value, flags) is not None)
    [second] = run_all(ex, [job("b", "getpid")])
    assert second.status == "ok" and second.value != first.value


@pytest.mark.slow
def test_payload_that_does_not_pickle_fails_at_submit(make):
    ex = make(1)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        ex.submit(job("lock", "echo", threading.Lock()))
    assert ex.free_slots() == 1
    [r] = run_all(ex, [job("lambda", "unpicklable_result")])
    assert r.status == "failed" and "cannot be sent back" in r.error
    [r] = run_all(ex, [job("next", "square", 2)])
    assert r.value == 4


@pytest.mark.slow
def test_sigkill_of_the_runner_leaves_no_worker(tmp_path):
    pid_file = tmp_path / "pids"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from hpt_cli.executors import Job, LocalExecutor
        ex = LocalExecutor(2)
        ex.start()
        payload = {{"pid_file": {str(pid_file)!r}}}
        ex.submit(Job("hang", "tests.executors.jobs:spawn_child_and_hang", payload))
        while True:
            ex.wait(timeout=1)
    """)
    runner = subprocess.Popen([sys.executable, "-c", script])
    try:
        worker, child = read_pids(pid_file, timeout=8)
        workers = children_of(runner.pid)  # the idle worker too
    finally:
        runner.kill()
        runner.wait()
    assert runner.returncode == -signal.SIGKILL
    assert worker in workers and len(workers) == 2
    assert wait_until(lambda: not any(alive(p) for p in [*workers, child]), timeout=5)


def children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


@pytest.mark.slow
def test_workers_outlive_the_thread_that_started_them():
    # PR_SET_PDEATHSIG fires when the spawning *thread* exits; the worker must not die of that.
    ex = LocalExecutor(1)
    first: list = []

    def start_and_run() -> None:
        ex.start()
        first.extend(run_all(ex, [job("a", "getpid")]))

    try:
        thread = threading.Thread(target=start_and_run)
        thread.start()
        thread.join()
        time.sleep(0.3)
        [second] = run_all(ex, [job("b", "getpid")])
        assert second.status == "ok" and second.value == first[0].value
    finally:
        ex.shutdown(cancel=True)


@pytest.mark.slow
def test_a_warm_up_runs_once_per_worker_before_its_first_job_and_outside_its_timeout(make):
    ex = make(1, warmup=("tests.executors.jobs:warm", {"seconds": 1.5}))
    first, second = run_all(ex, [job("a", "warmed", timeout=1.0), job("b", "warmed", timeout=1.0)])
    assert first.status == "ok" and first.value == [first.value[0]]  # 1.5 s of warm-up, no timeout
    assert second.value == first.value  # once per worker, not per job
    failing = make(1, warmup=("tests.executors.jobs:warm", {"fail": True}))
    (result,) = run_all(failing, [job("c", "warmed")])
    assert (result.status, result.value) == ("ok", [])  # a failed warm-up is the job's to find out
