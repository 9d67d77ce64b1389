"""The gs:// run lock: an object created only if absent, kept fresh by a heartbeat."""

from __future__ import annotations

import subprocess
import time

import pytest

from hpt_cli.errors import LockedError
from hpt_cli.storage.gcs import GcsLocation
from hpt_cli.storage.lock import GcsLock, acquire
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
