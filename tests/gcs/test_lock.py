"""The gs:// run lock: an object created only if absent, kept fresh by a heartbeat."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from hpt_cli.errors import LockedError
from hpt_cli.storage.gcs import GcsLocation
from hpt_cli.storage.lock import GcsLock, acquire, holder_info, holder_is_gone
from tests.gcs.emulator import client
from tests.helpers import HPT, subprocess_env, write_spec


def test_second_holder_is_refused_until_release(gcs_emulator, gcs_bucket):
    where = GcsLocation(gcs_bucket, "runs/a")
    first = GcsLock(where, client(gcs_emulator.url), heartbeat=0.1, stale_after=0.5)
    second = GcsLock(where, client(gcs_emulator.url), heartbeat=0.1, stale_after=0.5)
    assert first.try_acquire() is None
    time.sleep(1.0)  # longer than stale_after: the heartbeat keeps it fresh
    holder = second.try_acquire()
    assert holder is not None and holder.startswith("pid ")
    with pytest.raises(LockedError):
        acquire(second, "fail")
    assert acquire(second, "skip") is False
    first.release()
    assert second.try_acquire() is None
    second.release()
    assert client(gcs_emulator.url).bucket(gcs_bucket).get_blob("runs/a/.lock") is None


def test_a_stale_lock_is_taken_over(gcs_emulator, gcs_bucket):
    where = GcsLocation(gcs_bucket, "runs/b")
    crashed = GcsLock(where, client(gcs_emulator.url), heartbeat=3600, stale_after=0.3)
    assert crashed.try_acquire() is None
    crashed._stop.set()  # the machine died: no more heartbeats, no release
    time.sleep(0.5)
    fresh = GcsLock(where, client(gcs_emulator.url), heartbeat=3600, stale_after=0.3)
    assert fresh.try_acquire() is None
    fresh.release()


HOLD = """
import sys, time
from hpt_cli.storage.gcs import GcsLocation
from hpt_cli.storage.lock import GcsLock
from tests.gcs.emulator import client
lock = GcsLock(GcsLocation(sys.argv[2], sys.argv[3]), client(sys.argv[1]), heartbeat=3600, stale_after=3600)
assert lock.try_acquire() is None
print("held", flush=True)
time.sleep(float(sys.argv[4]))  # then exit without releasing, as a killed run does
"""


def _holder(url: str, bucket: str, key: str, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, url, bucket, key, str(seconds)], env=subprocess_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_lock_whose_process_on_this_machine_is_gone_is_taken_over_at_once(gcs_emulator, gcs_bucket):
    where = GcsLocation(gcs_bucket, "runs/gone")
    holder = _holder(gcs_emulator.url, gcs_bucket, "runs/gone", 0)
    assert holder.wait(timeout=30) == 0  # gone, its lock left behind with a fresh heartbeat
    assert client(gcs_emulator.url).bucket(gcs_bucket).get_blob("runs/gone/.lock") is not None
    rerun = GcsLock(where, client(gcs_emulator.url), heartbeat=3600, stale_after=3600)
    assert rerun.try_acquire() is None
    rerun.release()


def test_a_live_holder_keeps_its_lock_and_the_message_says_when_it_goes_stale(gcs_emulator, gcs_bucket):
    where = GcsLocation(gcs_bucket, "runs/live")
    holder = _holder(gcs_emulator.url, gcs_bucket, "runs/live", 60)
    try:
        other = GcsLock(where, client(gcs_emulator.url), heartbeat=3600, stale_after=3600)
        said = other.try_acquire()
        assert said is not None and said.startswith(f"pid {holder.pid} on ")
        assert re.search(r"\(last heartbeat \d+ s ago; a lock whose heartbeat is 1h old is taken over\)$", said)
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_holder_elsewhere_is_never_presumed_gone():
    me = holder_info()
    assert not holder_is_gone(me)  # this process: alive
    assert not holder_is_gone({**me, "host": "another-machine", "pid": 999_999_999})
    assert not holder_is_gone({**me, "pid_ns": "pid:[1]", "pid": 999_999_999})  # another container
    assert not holder_is_gone({"host": me["host"], "pid": 999_999_999})  # an older hpt's lock: unsure
    assert holder_is_gone({**me, "pid": 999_999_999})  # this machine, no such process
    assert holder_is_gone({**me, "pid_start": "1"})  # a later process that got the holder's pid


def test_a_live_holder_of_another_user_is_not_presumed_gone(monkeypatch):
    import os

    from hpt_cli.storage import lock as lock_module

    me = holder_info()

    def kill(pid, sig):  # another user's process: it exists, and its /proc entries are not ours to read
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(lock_module.os, "kill", kill)
    assert not holder_is_gone({**me, "pid": 999_999_998})  # /proc hides it (hidepid=2): unsure, so not gone
    monkeypatch.setattr(lock_module.os, "kill", os.kill)


@pytest.mark.slow
def test_two_machines_one_run(tmp_path, gcs_emulator, gcs_bucket):
    spec = write_spec(tmp_path, name="gslock", architecture="tests.archs:fault",
                      parameters={"kind": "sleep", "seconds": 0.3, "value": list(range(8))})
    procs = [subprocess.Popen([HPT, "run", str(spec), "-o", f"gs://{gcs_bucket}/l", "-j", "2"],
                              env=subprocess_env(STORAGE_EMULATOR_HOST=gcs_emulator.url,
                                                 HPT_SPOOL=str(tmp_path / f"spool{i}")),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    codes = sorted(p.wait(timeout=60) for p in procs)
    assert codes == [0, 5], [p.communicate() for p in procs]
