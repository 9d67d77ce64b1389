"""Findings of the README walkthrough (/tmp/reviews/readme.md): each user error is one line,
exit 2, saying what, where and how to fix; counts say what `hpt run` says."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from hpt_cli import architectures
from hpt_cli.cli import cli, why_unwritable
from hpt_cli.devices import describe, fake, plan
from hpt_cli.devices.placement import capped
from hpt_cli.watch import Tally
from tests.test_report import RANGES6, rows_for, write_run


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


# -- 4 and 17: a path that cannot be written says why -----------------------------------------------

def test_why_unwritable_names_the_file_in_the_way(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    for path, folder in ((afile / "x.xml", False), (afile / "sub" / "x.xml", False), (afile / "sub", True),
                         (afile, True)):
        try:
            (path if folder else path.parent).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            assert why_unwritable(path, exc, folder=folder) == f"{afile} is a file, not a folder"
        else:
            raise AssertionError(f"{path} was made")
    try:
        open(tmp_path, "a")
    except OSError as exc:
        assert why_unwritable(tmp_path, exc) == f"{tmp_path} is a folder, not a file"


@pytest.mark.parametrize("option", ["--junit", "--events", "--summary-json"])
def test_a_report_file_under_a_file_says_so(tmp_path, option):
    (tmp_path / "afile").write_text("")
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"architecture": "ridge", "date-range": [["2015-01-01", "2015-07-01"]]}))
    result = invoke("run", str(spec), "-o", str(tmp_path / "runs"), option, str(tmp_path / "afile" / "x.xml"))
    assert result.exit_code == 2
    assert result.output == (f"error: Invalid value for {option}: cannot write {tmp_path}/afile/x.xml: "
                             f"{tmp_path}/afile is a file, not a folder (see hpt run --help)\n")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("fmt, name", [("table", "report.txt"), ("html", "report.html")])
def test_report_out_that_cannot_be_made_is_one_line(tmp_path, fmt, name):
    run = write_run(tmp_path / "syn-1", rows_for(RANGES6[:2], 1), RANGES6[:2], 1)
    (tmp_path / "afile").write_text("")
    result = invoke("report", run, "--format", fmt, "--out", str(tmp_path / "afile" / "sub"))
    assert result.exit_code == 2
    assert result.output == (f"error: {tmp_path}/afile/sub/{name}: cannot write the report ({tmp_path}/afile is a "
                             "file, not a folder); give --out a folder you can write\n")


# -- 21: the same run given twice is read once ------------------------------------------------------

def test_the_same_run_twice_is_counted_once(tmp_path, monkeypatch):
    run = write_run(tmp_path / "runs" / "syn-1", rows_for(RANGES6[:2], 1), RANGES6[:2], 1)
    once = invoke("report", run)
    monkeypatch.chdir(tmp_path)
    twice = invoke("report", "runs/syn-1", "runs/syn-1/results.csv", "./runs/syn-1/", "runs/syn-1")
    assert twice.exit_code == 0 and twice.stdout == once.stdout.replace(run, "runs/syn-1")
    assert "8 trials (8 ok)" in twice.stdout
    assert twice.stderr == (
        "note: runs/syn-1/results.csv is the run folder runs/syn-1 again; its trials are counted once\n"
        "note: ./runs/syn-1/ is the run folder runs/syn-1 again; its trials are counted once\n"
        "note: runs/syn-1 is given twice; its trials are counted once\n")


# -- 5: --scheduler without the Dask executor -------------------------------------------------------

@pytest.mark.parametrize("value, tail", [
    ("tcp://127.0.0.1:8799", ""),
    ("asha", "; early stopping is the spec's \"scheduler\" key: \"scheduler\": {\"type\": \"asha\"}"),
    ("Median", "; early stopping is the spec's \"scheduler\" key: \"scheduler\": {\"type\": \"median\"}"),
])
def test_scheduler_without_dask_is_refused(tmp_path, value, tail):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"architecture": "ridge", "date-range": [["2015-01-01", "2015-07-01"]]}))
    for extra in ([], ["--executor", "local"]):
        result = invoke("run", str(spec), "-o", str(tmp_path / "runs"), "--scheduler", value, *extra)
        assert result.exit_code == 2
        assert result.output == ("error: --scheduler is the Dask scheduler's address (tcp://host:8786) and goes with "
                                 "--executor dask (or \"executor\": \"dask\" in the spec)" + tail
                                 + " (see hpt run --help)\n")
    assert not (tmp_path / "runs").exists()


# -- 6: a module that runs argparse at import -------------------------------------------------------

def test_argparse_at_import_is_one_line_quoting_its_reason(tmp_path, monkeypatch, capfd):
    (tmp_path / "argp_at_import.py").write_text(
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('--lr', required=True)\n"
        "p.parse_args()\n\ndef train(params, ctx):\n    return {}\n")
    (tmp_path / "prints_at_import.py").write_text("print('loading')\n\ndef train(params, ctx):\n    return {}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["hpt"])
    monkeypatch.setattr("sys.path", list(sys.path))  # the import puts the working folder first
    with pytest.raises(architectures.ArchitectureError) as caught:
        architectures._from_reference("argp_at_import:train")
    assert str(caught.value) == (
        "importing 'argp_at_import' for architecture 'argp_at_import:train' called sys.exit(2) ('the following "
        "arguments are required: --lr'): it runs argparse or sys.exit at import time; put that code under "
        "`if __name__ == \"__main__\":`")
    assert capfd.readouterr() == ("", "")  # argparse's usage lines stayed off the terminal
    architectures._from_reference("prints_at_import:train")
    assert capfd.readouterr() == ("loading\n", "")  # an import that ends well keeps what it printed


# -- 16: usage errors name the subcommand's help ----------------------------------------------------

@pytest.mark.parametrize("args, line", [
    (["validate", "x.json", "--debug"],
     "error: --debug is hpt's own option and goes before the command: hpt --debug validate ... (see hpt --help)"),
    (["run", "--version"], "error: --version is hpt's own option and goes before the command: hpt --version "
                           "(see hpt --help)"),
    (["run", "x.json", "--output"], "error: Option '--output' requires an argument. (see hpt run --help)"),
    (["run", "x.json", "--events"], "error: Option '--events' requires an argument. (see hpt run --help)"),
    (["report"], "error: Missing argument 'RUN [RUN...]'. (see hpt report --help)"),
])
def test_usage_errors_name_the_right_help(args, line):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.output == line + "\n"


# -- 19: what caps the slots ------------------------------------------------------------------------

def test_slots_fewer_than_the_gpus_hold_say_what_capped_them():
    four = fake("4x80GiB", cpus=2)
    slots = plan(four, "auto", 1, None, 6144)
    cap = capped(slots, four, "auto", 1, None, 6144)
    assert describe(slots, cap)[0] == ("2 slots: gpu0, gpu1 (capped at 2 usable CPUs / cpus_per_trial 1; the GPUs "
                                       "have room for 52 (-j N to use more))")
    slots = plan(four, 0.5, 1, 3)
    assert describe(slots, capped(slots, four, 0.5, 1, 3))[0] == (
        "3 slots: gpu0, gpu1, gpu2 (capped by -j 3; the GPUs have room for 8)")
    slots = plan(four, 0, 1, None, 6144)  # memory alone is "auto"
    assert capped(slots, four, 0, 1, None, 6144).startswith("capped at 2 usable CPUs")
    for g, workers in ((1, None), (0.5, 8), (0, None), (0, 3)):  # nothing capped them, or CPU slots
        assert capped(plan(four, g, 1, workers), four, g, 1, workers) == ""


def test_hpt_devices_says_what_capped_the_slots():
    result = CliRunner().invoke(cli, ["devices", "--gpus-per-trial", "0.5", "-j", "3"],
                                env={"HPT_FAKE_GPUS": "4x80GiB", "CUDA_VISIBLE_DEVICES": None})
    assert result.exit_code == 0, result.output
    assert "3 slots: gpu0, gpu1, gpu2 (capped by -j 3; the GPUs have room for 8)\n" in result.output
