"""A trial's processes end with the trial, also those that left the worker's process group."""

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
from hpt_cli.executors import Job
from hpt_cli.trialrun import TrialPayload
from tests.executors.test_contract import alive, job, read_pids, run_all

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


@pytest.mark.parametrize("name", ["leave_child", "leave_setsid_child", "leave_child_of_a_thread", "leave_daemon"])
def test_what_a_function_trial_leaves_running_is_gone_when_its_result_is_back(executor, tmp_path, name):
    pid_file = tmp_path / "pids"
    [r] = run_all(executor, [leftover("a", name, pid_file=str(pid_file))])
    assert r.status == "ok", r.error
    pids = read_pids(pid_file)
    assert pids == r.value and pids
    try:
        assert not [pid for pid in pids if exists(pid)]  # killed and reaped before the result came
    finally:
        for pid in pids:  # never leave a `sleep 300` behind, even when the test fails
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    [after] = run_all(executor, [job("b", "getpid")])
    assert after.status == "ok" and after.value == r.pid  # the same warm worker goes on


def test_a_child_writes_nothing_into_the_log_once_the_result_is_back(executor, tmp_path):
    log = tmp_path / "log.txt"
    [r] = run_all(executor, [Job("w", f"{JOBS}:leave_writer", {"log": str(log), "pid_file": str(tmp_path / "pids")},
                           timeout=30, log_path=str(log))])
    assert r.status == "ok", r.error
    [child] = r.value
    assert not exists(child)
    text = log.read_text()
    assert "late" in text
    time.sleep(0.2)  # ten of the child's lines, had it lived
    assert log.read_text() == text


def test_popen_objects_a_job_kept_survive_the_reaping(executor, tmp_path):
    # a later wait() on a child the worker has reaped sees ECHILD, which subprocess takes as exit 0
    [r] = run_all(executor, [leftover("a", "leave_child", pid_file=str(tmp_path / "pids"))])
    assert r.status == "ok"
    [waited] = run_all(executor, [leftover("b", "wait_left")])
    assert waited.status == "ok" and waited.value == [0]


def test_a_forkserver_pool_works_in_every_job_although_its_server_is_killed_after_each(executor, tmp_path):
    # the fork server and the resource tracker outlive a pool; multiprocessing is told they are gone
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
