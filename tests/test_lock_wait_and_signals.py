"""`--lock wait` within --max-time, the signal messages, `--grace 0` and `hpt run --help`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hpt_cli.cli import cli, run_command
from hpt_cli.errors import ExitCode
from hpt_cli.storage.lock import FileLock, LockWaitCapped, RunLock, acquire
from tests.helpers import HPT, subprocess_env, write_spec


class HeldUntil(RunLock):
    """A lock someone else holds until the fake clock reaches `free_at`."""

    where = "runs/x-1"

    def __init__(self, clock, free_at=float("inf")):
        self.clock, self.free_at = clock, free_at

    def try_acquire(self):
        return None if self.clock() >= self.free_at else "pid 1 on box since 2026-01-01T00:00:00+00:00"

    def release(self):
        pass


def fake_clock():
    now = [0.0]
    return (lambda: now[0]), (lambda seconds: now.__setitem__(0, now[0] + seconds)), now


def test_lock_wait_gives_up_when_max_time_passes():
    clock, sleep, now = fake_clock()
    with pytest.raises(LockWaitCapped) as caught:
        acquire(HeldUntil(clock), "wait", poll=2.0, sleep=sleep, clock=clock, max_wait=5.0)
    assert now[0] == 5.0  # waited exactly the cap (the last sleep is cut to what is left)
    assert caught.value.exit_code == ExitCode.TIME_CAP == 6
    assert str(caught.value) == ("--max-time 5s passed while waiting for pid 1 on box since "
                                 "2026-01-01T00:00:00+00:00 to release runs/x-1; nothing was run")


def test_lock_wait_within_max_time_takes_the_lock():
    clock, sleep, now = fake_clock()
    assert acquire(HeldUntil(clock, free_at=3.0), "wait", poll=2.0, sleep=sleep, clock=clock, max_wait=7200)
    assert now[0] == 4.0
    clock, sleep, now = fake_clock()
    with pytest.raises(LockWaitCapped, match=r"^--max-time 2h passed while waiting"):
        acquire(HeldUntil(clock), "wait", poll=60, sleep=sleep, clock=clock, max_wait=7200)


def test_the_lock_wait_is_taken_from_the_run_s_max_time(tmp_path, monkeypatch):
    import hpt_cli.runner as runner_module
    from hpt_cli.runner import RunOptions, RunResult, run_spec
    from hpt_cli.spec import load_spec

    seen = {}

    def slow_acquire(lock, mode, **kwargs):
        seen["max_wait"] = kwargs.get("max_wait")
        time.sleep(0.3)  # the other run held the lock this long
        return True

    class Recorder:
        def __init__(self, *args, **kwargs):
            seen["max_time"] = kwargs["max_time"]

        def run(self):
            return RunResult("r", "u", 0, {})

    monkeypatch.setattr(runner_module, "acquire", slow_acquire)
    monkeypatch.setattr(runner_module, "Runner", Recorder)
    spec = load_spec(write_spec(tmp_path, architecture="tests.archs:fault", parameters={"kind": "ok"}))
    run_spec(spec, RunOptions(output=str(tmp_path / "out"), lock="wait", max_time=10.0, workers=1))
    assert seen["max_wait"] == 10.0
    assert 0 < seen["max_time"] <= 10.0 - 0.3


@pytest.mark.slow
def test_hpt_run_lock_wait_exits_6_when_max_time_passes_while_waiting(tmp_path):
    spec = write_spec(tmp_path, name="capwait", architecture="tests.archs:fault", parameters={"kind": "ok"})
    cmd = [HPT, "run", str(spec), "-o", str(tmp_path / "out"), "-j", "1", "-q"]
    assert subprocess.run(cmd, env=subprocess_env(), capture_output=True, timeout=60).returncode == 0
    (folder,) = (tmp_path / "out").iterdir()
    holder = FileLock(folder)  # another run holds the folder, for longer than this test lasts
    assert holder.try_acquire() is None
    try:
        started = time.monotonic()
        result = subprocess.run(cmd + ["--lock", "wait", "--max-time", "1s", "--grace", "1s"],
                                env=subprocess_env(), capture_output=True, text=True, timeout=60)
        took = time.monotonic() - started
    finally:
        holder.release()
    assert result.returncode == 6, result.stderr
    assert took < 20, took  # the cap plus start-up, not the holder's run
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("waiting for pid ")
    assert re.fullmatch(rf"error: --max-time 1s passed while waiting for pid \d+ on .+ to release {folder}; "
                        r"nothing was run", lines[-1]), lines[-1]
    assert json.loads((folder / "summary.json").read_text())["status"] == "complete"  # the first run's, untouched


# -- signals -------------------------------------------------------------------------------------------

@pytest.fixture
def exits(monkeypatch):
    codes = []

    def fake_exit(code):
        codes.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(run_command.os, "_exit", fake_exit)
    return codes


def test_deleting_the_lock_file_lets_no_second_run_into_a_held_folder(tmp_path):
    holder, other = FileLock(tmp_path / "run"), FileLock(tmp_path / "run")
    assert holder.try_acquire() is None
    (tmp_path / "run" / ".lock").unlink()  # it stays after every run, so it may look stale
    assert other.try_acquire() == "another run"  # the folder itself is held; .lock no longer says by whom
    holder.release()
    assert other.try_acquire() is None
    assert json.loads((tmp_path / "run" / ".lock").read_text())["pid"] == os.getpid()
    assert holder.try_acquire().startswith(f"pid {os.getpid()} on ")
    other.release()


@pytest.mark.parametrize("sig, again", [(signal.SIGTERM, "send SIGTERM again"), (signal.SIGINT, "Ctrl-C again")])
def test_the_first_signal_says_how_to_quit_at_once_for_that_signal(sig, again, exits):
    said = []
    handler = run_command.StopOnSignal(threading.Event(), said.append)
    handler.handle(sig, None)
    assert handler.stop.is_set()
    assert said == [f"{sig.name}: stopping; finished trials are kept ({again} to quit at once)"]
    assert "Ctrl-C" not in said[0] or sig == signal.SIGINT
    with pytest.raises(SystemExit):
        handler.handle(sig, None)  # the same signal again: at once
    assert exits == [ExitCode.INTERRUPTED]


def test_a_second_signal_names_the_spool_of_a_gcs_run(exits, tmp_path):
    said = []
    handler = run_command.StopOnSignal(threading.Event(), said.append)
    handler.spool = tmp_path / "spool" / "b" / "run-1"
    handler.handle(signal.SIGTERM, None)
    with pytest.raises(SystemExit):
        handler.handle(signal.SIGINT, None)  # either signal quits
    assert exits == [3]
    assert said[-1] == (f"SIGINT again: quitting at once; what was not uploaded yet is in the spool "
                        f"{handler.spool}; upload it with: hpt sync {handler.spool}")


def test_a_second_signal_names_the_folder_of_a_local_run(exits):
    said = []
    handler = run_command.StopOnSignal(threading.Event(), said.append)
    handler.folder = "runs/x-1"
    handler.handle(signal.SIGHUP, None)
    assert said == ["SIGHUP: stopping; finished trials are kept (send SIGHUP again to quit at once)"]
    with pytest.raises(SystemExit):
        handler.handle(signal.SIGTERM, None)
    assert said[-1] == ("SIGTERM again: quitting at once; finished trials are kept in runs/x-1 "
                        "(run the same command again to run the rest)")


# -- --grace 0, --output's help ----------------------------------------------------------------------

def test_grace_takes_zero_and_max_time_does_not():
    grace = run_command.Duration(allow_zero=True)
    assert [grace.convert(v, None, None) for v in ("0", "0s", "0.0m", " 0 h", "90s")] == [0, 0, 0, 0, 90]
    with pytest.raises(click.BadParameter):
        grace.convert("-1s", None, None)
    with pytest.raises(click.BadParameter):
        run_command.Duration().convert("0", None, None)


@pytest.mark.slow
def test_grace_0_cancels_the_running_trials_at_the_cap(tmp_path):
    spec = write_spec(tmp_path, name="nograce", architecture="tests.archs:fault",
                      parameters={"kind": "sleep", "seconds": 30, "value": [1, 2]})
    started = time.monotonic()
    result = subprocess.run([HPT, "run", str(spec), "-o", str(tmp_path / "out"), "-j", "2", "--max-time", "0.5s",
                             "--grace", "0"], env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 6, result.stderr
    assert time.monotonic() - started < 20  # not the trials' 30 s
    (folder,) = (tmp_path / "out").iterdir()
    assert json.loads((folder / "summary.json").read_text())["counts"]["cancelled"] == 2


def test_run_help_says_output_takes_gs():
    text = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200).output
    (line,) = [line for line in text.splitlines() if "--output" in line and line.strip().startswith("-o")]
    assert "-o, --output DIR|gs://..." in line and "DIR or gs://bucket/prefix" in line


def test_max_time_zero_is_still_refused(tmp_path):
    spec = write_spec(tmp_path, architecture="tests.archs:fault", parameters={"kind": "ok"})
    result = CliRunner().invoke(cli, ["run", str(spec), "-o", str(tmp_path / "out"), "--max-time", "0"])
    assert result.exit_code == 2
    assert not Path(tmp_path / "out").exists()


def test_a_folder_that_cannot_be_locked_falls_back_to_the_lock_file(tmp_path, monkeypatch):
    import errno
    import fcntl

    real = fcntl.flock

    def flock(fd, op):
        if os.path.isdir(f"/proc/self/fd/{fd}"):  # a FUSE mount that refuses to lock a folder
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    holder, other = FileLock(tmp_path / "run"), FileLock(tmp_path / "run")
    assert holder.try_acquire() is None
    assert other.try_acquire().startswith(f"pid {os.getpid()} on ")  # .lock alone still excludes
    holder.release()


def test_a_folder_the_lock_made_and_nothing_used_goes_with_the_lock(tmp_path):
    made, kept = FileLock(tmp_path / "spool" / "run"), FileLock(tmp_path / "used")
    (tmp_path / "used").mkdir()
    assert made.try_acquire() is None and kept.try_acquire() is None
    made.release()  # a run refused before it started (a missing bucket): no empty folder left
    kept.release()  # a folder that was there before stays
    assert not (tmp_path / "spool" / "run").exists() and (tmp_path / "spool").is_dir()
    assert sorted(p.name for p in (tmp_path / "used").iterdir()) == [".lock"]
    again = FileLock(tmp_path / "spool" / "run")
    assert again.try_acquire() is None
    (tmp_path / "spool" / "run" / "results.csv").write_text("trial_id\n")  # the run wrote something
    again.release()
    assert sorted(p.name for p in (tmp_path / "spool" / "run").iterdir()) == [".lock", "results.csv"]


def test_a_folder_removed_while_it_was_locked_is_locked_again_at_its_path(tmp_path, monkeypatch):
    import shutil

    lock = FileLock(tmp_path / "run")
    real = lock._try_acquire
    calls = []

    def removed_meanwhile():
        held = real()
        if not calls:  # the first time: another process removes the folder just after the flock
            calls.append(1)
            shutil.rmtree(tmp_path / "run")
        return held

    monkeypatch.setattr(lock, "_try_acquire", removed_meanwhile)
    assert lock.try_acquire() is None
    (tmp_path / "run" / "x").write_text("")  # the folder at the path is the one locked
    other = FileLock(tmp_path / "run")
    assert other.try_acquire().startswith(f"pid {os.getpid()} on ")
    lock.release()


def test_a_folder_removed_before_it_could_be_opened_is_made_again(tmp_path, monkeypatch):
    import shutil

    lock = FileLock(tmp_path / "run")
    real = lock._try_acquire
    calls = []

    def removed_first():
        if not calls:  # another run's release removed the folder just after this one's mkdir
            calls.append(1)
            shutil.rmtree(tmp_path / "run")
        return real()

    monkeypatch.setattr(lock, "_try_acquire", removed_first)
    assert lock.try_acquire() is None and (tmp_path / "run" / ".lock").is_file()
    lock.release()

