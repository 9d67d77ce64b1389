"""Findings of the README walkthrough (/tmp/reviews/readme.md): each user error is one line,
exit 2, saying what, where and how to fix; counts say what `hpt run` says."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hpt_cli.cli import cli
from hpt_cli.watch import Tally


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="hpt")


# -- 1: `hpt watch` of a folder that is no run folder ----------------------------------------------

def test_watch_of_an_empty_folder_is_no_such_run_folder(tmp_path):
    result = invoke("watch", str(tmp_path))
    assert result.exit_code == 2
    assert result.output == (f"error: {tmp_path}: no such run folder; give the folder `hpt run` printed "
                             "(<output>/<run-id>)\n")


@pytest.mark.parametrize("name", ["spec.json", "results.csv", ".lock"])
def test_any_of_the_run_files_makes_a_run_folder(tmp_path, name, monkeypatch):
    (tmp_path / name).write_text("")

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr("hpt_cli.watch.Watcher.poll", interrupted)  # watching began: stop there
    result = invoke("watch", str(tmp_path))
    assert (result.exit_code, result.stdout) == (3, f"watching {tmp_path}\n")


def test_watch_of_the_output_folder_names_its_run_folders(tmp_path):
    for name in ("b-2", "a-1", "c-3", "d-4"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "results.csv").write_text("trial_id,status\n")
    (tmp_path / "runs" / "notes").mkdir()  # a folder that is no run folder is not named
    runs = tmp_path / "runs"
    result = invoke("watch", str(runs))
    assert result.exit_code == 2
    assert result.output == (f"error: {runs} holds run folders: {runs}/a-1, {runs}/b-2, {runs}/c-3 and 1 more; "
                             "give one\n")
    (runs / "c-3" / "results.csv").unlink()
    (runs / "d-4" / "results.csv").unlink()
    assert invoke("watch", str(runs)).output == f"error: {runs} holds run folders: {runs}/a-1, {runs}/b-2; give one\n"


# -- 22: timeouts are counted apart from failures, as `hpt run` counts them -------------------------

def test_the_watch_tally_counts_timeouts_apart():
    tally = Tally(total=7)
    for i, status in enumerate(["ok", "failed", "timeout", "failed", "stopped"]):
        tally.add({"trial_id": f"t{i}", "status": status, "val_mse": "2.5"})
    assert tally.line() == "[5/7] 1 ok, 1 stopped early, 2 failed, 1 timed out, best val_mse 2.5 (trial t0)"
    assert Tally().line() == "[0] 0 ok, 0 failed"  # no timeout: not mentioned
