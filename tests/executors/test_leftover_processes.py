"""What a trial leaves running ends with its worker (a command trial's: when its program exits),
also processes that left the worker's process group; pools kept in globals work across trials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hpt_cli import reaper
from hpt_cli.executors import Job, LocalExecutor
from hpt_cli.trialrun import TrialPayload
from tests.executors.test_contract import alive, read_pids, run_all

pytestmark = pytest.mark.slow

JOBS = "tests.executors.leftover_jobs"
REPO_ROOT = Path(__file__).resolve().parents[2]


def leftover(key: str, name: str, **payload) -> Job:
    return Job(key=key, func=f"{JOBS}:{name}", payload=payload, timeout=30)


def exists(pid: int) -> bool:
    """Whether `pid` is still a process at all: a zombie counts, unlike `alive`. The worker reaps
    what it kills, so nothing of a finished job is left, not even a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone_within(pids: list[int], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while any(exists(pid) for pid in pids):
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("cancel", [True, False])
@pytest.mark.parametrize("name", ["leave_child", "leave_setsid_child", "leave_child_of_a_thread", "leave_daemon"])
def test_what_a_function_trial_leaves_running_ends_with_its_worker(tmp_path, name, cancel):
    """Not after the job (a pool kept in a global must keep working), but when the executor shuts
    down, also a process out of the worker's group, which killing the group would miss."""
    ex = LocalExecutor(1)
    ex.start()
    pid_file = tmp_path / "pids"
    try:
        [r] = run_all(ex, [leftover("a", name, pid_file=str(pid_file))])
        assert r.status == "ok", r.error
        pids = read_pids(pid_file)
        assert pids == r.value and pids
        assert all(alive(pid) for pid in pids)  # the next trial of this worker could still use them
        ex.shutdown(cancel=cancel)  # the runner's, at the end of every run, cancels
        assert gone_within(pids)  # killed and reaped by the worker as it exits: not even a zombie
    finally:
        ex.shutdown(cancel=True)
        for pid in read_pids(pid_file):  # never leave a `sleep 300` behind, even when the test fails
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_pool_kept_in_a_global_works_in_every_trial_of_its_worker(executor, tmp_path):
    results = run_all(executor, [Job(k, f"{JOBS}:kept_pool", None, timeout=30) for k in "abc"], timeout=60)
    assert [r.status for r in results] == ["ok"] * 3, [r.error for r in results]
    assert len({tuple(r.value) for r in results}) == 1  # the same pool workers each time


def test_processes_a_trial_forks_end_by_sigterm_though_the_worker_shrugs_it_off(executor):
    # a fork pool's workers inherit the worker's handlers: a `with Pool` block ends them with SIGTERM
    [r] = run_all(executor, [Job("f", f"{JOBS}:fork_pool_in_a_with_block", None, timeout=30)], timeout=40)
    assert (r.status, r.value) == ("ok", ([0, 1, 4, 9, 16, 25], -signal.SIGTERM)), r.error


def test_a_forkserver_pool_works_in_every_job(executor, tmp_path):
    log = tmp_path / "log.txt"
    jobs = [Job(k, f"{JOBS}:forkserver_pool", None, timeout=30, log_path=str(log)) for k in "abc"]
    results = run_all(executor, jobs, timeout=60)
    assert [(r.status, r.value) for r in results] == [("ok", True)] * 3, [r.error for r in results]
    assert log.read_text() == ""  # no "resource_tracker: process died unexpectedly" either


def test_what_a_command_trial_leaves_running_is_gone_when_its_result_is_back(executor, tmp_path):
    pid_file = tmp_path / "pids"
    script = (f"sleep 300 & echo $! >> {pid_file}; setsid sleep 300 & echo $! >> {pid_file}; "
              "echo '{{\"val_mse\": 1.5}}'")  # {{ }}: the template's braces
    payload = TrialPayload(
        trial_id="t1", architecture="command", params={}, date_range=("2014-01-01", "2014-02-01"), seed=1,
        epochs=None, data=None, artifact_dir=str(tmp_path / "t1"), command=("sh", "-c", script), timeout=30,
    )
    [r] = run_all(executor, [Job("c", "hpt_cli.trialrun:run_trial", payload, timeout=30,
                           log_path=str(tmp_path / "log.txt"))])
    assert r.status == "ok" and r.value == {"val_mse": 1.5}, r.error
    pids = read_pids(pid_file)
    assert len(pids) == 2
    try:
        assert not [pid for pid in pids if exists(pid)]
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def run_alone(code: str) -> str:
    """Run `code` in a fresh interpreter that leads its own session, as a worker does (the reaper
    must not touch this test process's children); its stdout."""
    script = f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r})\n" + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                          start_new_session=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_end_children_ends_grandchildren_and_spares_the_process_itself():
    out = run_alone("""
        import os, subprocess, time
        from hpt_cli import reaper
        assert reaper.become_subreaper()
        # a shell whose own children are a plain one and one in a session of its own
        shell = subprocess.Popen(["sh", "-c", "sleep 300 & setsid sleep 300 & echo $!; wait"],
                                 stdout=subprocess.PIPE, text=True)
        grandchild = int(shell.stdout.readline())
        reaper.end_children(timeout=10)
        def exists(pid):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            return True
        print(exists(shell.pid), exists(grandchild), reaper._reap())
        reaper.end_children()  # nothing left: returns at once
        print("still here", os.getppid() > 1)
    """)
    assert out.splitlines() == ["False False False", "still here True"]


def test_the_children_files_are_read_for_every_thread(tmp_path, monkeypatch):
    for tid, text in {"100": "101 102\n", "103": "", "104": "105 "}.items():
        (tmp_path / tid).mkdir()
        (tmp_path / tid / "children").write_text(text)
    monkeypatch.setattr(reaper, "_TASKS", str(tmp_path))
    monkeypatch.setattr(reaper, "_children_files", True)
    assert reaper._children() == {101, 102, 105}


def test_the_fork_hooks_leave_a_thread_s_own_signal_mask_as_it_was():
    out = run_alone("""
        import os, signal
        from hpt_cli.executors import _worker
        os.register_at_fork(before=_worker._hold_signals, after_in_parent=_worker._release_signals,
                             after_in_child=_worker._defaults_in_child)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # blocked by the job itself
        pid = os.fork()
        if pid == 0:
            print("child", sorted(signal.pthread_sigmask(signal.SIG_BLOCK, set())), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        print("parent", sorted(signal.pthread_sigmask(signal.SIG_BLOCK, set())), flush=True)
    """)
    assert out.splitlines() == ["child [<Signals.SIGTERM: 15>]", "parent [<Signals.SIGTERM: 15>]"]
