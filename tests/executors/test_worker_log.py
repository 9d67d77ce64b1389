"""A job's log is best effort: a log that cannot be written (a full disk) or opened never fails the
job, never kills its worker and never spills onto the runner's stderr."""

from __future__ import annotations

import pytest

from hpt_cli.executors import Job, LocalExecutor
from tests.executors.test_contract import run_all

pytestmark = pytest.mark.slow

JOBS = "tests.executors.log_jobs"
FULL = "/dev/full"  # every write fails with ENOSPC, as on a full disk


def job(key, name, payload=None, log_path=FULL):
    return Job(key=key, func=f"{JOBS}:{name}", payload=payload, log_path=log_path)


def test_a_job_whose_log_cannot_be_written_returns_its_result(capfd):
    executor = LocalExecutor(1)  # started in the test, so its worker's stdout is capfd's fd 2
    executor.start()
    try:
        _check_full_log(executor, capfd)
    finally:
        executor.shutdown(cancel=True)


def _check_full_log(executor, capfd):
    [ok] = run_all(executor, [job("ok", "chatty", {"lines": 200, "value": 7})])
    assert ok.status == "ok", ok.error
    assert ok.value["value"] == 7
    [bad] = run_all(executor, [job("bad", "chatty_then_raise")])
    assert bad.status == "failed"
    assert bad.error == "ValueError: the job's own error"  # the job's error, not the log's
    assert "ValueError: the job's own error" in bad.traceback
    # the same worker served both jobs and serves the next: it did not die
    [after] = run_all(executor, [job("after", "getpid", log_path=None)])
    assert after.status == "ok" and after.value == ok.value["pid"] == ok.pid == bad.pid
    # what the log could not take is dropped, not written to the runner's stderr later
    err = capfd.readouterr().err
    assert "chatty" not in err and "Traceback" not in err, err
    assert "getpid prints" in err  # a job without a log still prints there


def test_a_log_that_cannot_be_opened_does_not_stop_the_job(executor, tmp_path):
    missing = tmp_path / "no such folder" / "log.txt"
    [r] = run_all(executor, [job("ok", "chatty", {"lines": 3, "value": 1}, log_path=str(missing))])
    assert r.status == "ok" and r.value["value"] == 1, r.error
    [r] = run_all(executor, [job("bad", "chatty_then_raise", log_path=str(missing))])
    assert r.status == "failed" and r.error == "ValueError: the job's own error"


def test_a_log_that_works_still_gets_everything(executor, tmp_path):
    log = tmp_path / "log.txt"
    [r] = run_all(executor, [job("bad", "chatty_then_raise", log_path=str(log))])
    text = log.read_text()
    assert "chatty before the error" in text and r.traceback in text
