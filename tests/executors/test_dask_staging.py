"""Where a Dask task runs a job's files (hpt_cli/executors/_dask_task.py `_stage`, `_collect`), in
this process: no cluster. The runner's folder is told by the marker the client writes for that
task; a folder that a killed worker staged and never collected is staged again, not taken for
a shared filesystem (its files would stay on the worker)."""

from __future__ import annotations

import pytest

from hpt_cli.executors import _dask_task as task


def test_a_folder_a_killed_task_left_staged_is_staged_again_for_the_rerun(tmp_path):
    log = tmp_path / "run" / "trials" / "abc" / "log.txt"
    made = task._stage(str(log), "hpt-abc-first")
    assert made is not None and log.parent.is_dir()
    log.write_text("the first attempt, never shipped\n")  # then its worker is SIGKILLed: no _collect
    made = task._stage(str(log), "hpt-abc-rerun")  # Dask runs the task again on this box
    assert made is not None, "the rerun took the stale folder for the runner's: its files would stay here"
    assert not log.exists()  # the stale attempt's files are gone, not shipped with the rerun's
    log.write_text("the rerun\n")
    (log.parent / "model.pkl").write_bytes(b"m")
    assert task._collect(made, "hpt-abc-rerun") == [("log.txt", b"the rerun\n"), ("model.pkl", b"m")]
    assert not (tmp_path / "run").exists()  # every folder it made is removed


def test_the_runner_s_folder_is_told_by_the_task_s_marker_not_by_existing(tmp_path):
    log = tmp_path / "trial" / "log.txt"
    log.parent.mkdir()
    (log.parent / task.shared_marker("hpt-t-1")).touch()  # what DaskExecutor writes before it submits
    assert task._stage(str(log), "hpt-t-1") is None  # shared: the trial writes in place
    with pytest.raises(task._NotTheRunners, match="exists here but is not the runner's folder"):
        task._stage(str(log), "hpt-t-2")  # a folder at that path that neither hpt side made
    assert log.parent.is_dir()  # and it is left alone


def test_collect_leaves_a_folder_another_task_staged_again(tmp_path):
    log = tmp_path / "trial" / "log.txt"
    made = task._stage(str(log), "hpt-t-old")
    task._stage(str(log), "hpt-t-new")  # the scheduler ran the task again here meanwhile
    log.write_text("new\n")
    assert task._collect(made, "hpt-t-old") == [("log.txt", b"new\n")]
    assert (log.parent / task.STAGED).read_text().splitlines()[0] == "hpt-t-new"  # the new task's folder stays
