"""A stop signal from outside hpt (Jenkins' abort and systemd's stop signal the whole process
tree; a closed terminal sends SIGHUP) is not a trial's failure: no row while the run stops, the
trial started again while it does not, and a rerun runs what was cut short."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from hpt_cli.runner import RunOptions, run_spec
from hpt_cli.spec import load_spec
from tests.helpers import HPT, subprocess_env, write_spec

SELF_TERM = """#!/bin/sh
# Ends by SIGTERM from "outside" (itself) on its first $1 starts, then reports a value.
count=$(cat "$HPT_ARTIFACT_DIR/starts" 2>/dev/null || echo 0)
count=$((count + 1))
echo "$count" > "$HPT_ARTIFACT_DIR/starts"
echo "start $count"
if [ "$count" -le "$1" ]; then kill -TERM $$; fi
echo '{"val_mse": 1.5}'
"""


def _run(tmp_path: Path, times: int):
    script = tmp_path / "self_term.sh"
    script.write_text(SELF_TERM)
    script.chmod(0o755)
    spec = load_spec(write_spec(tmp_path, command=[str(script), "{times}"], parameters={"times": [times]}))
    result = run_spec(spec, RunOptions(output=str(tmp_path / "out"), workers=1))
    (folder,) = (tmp_path / "out").iterdir()
    rows = pd.read_csv(folder / "results.csv", keep_default_na=False)
    (trial,) = (folder / "trials").iterdir()
    return result, rows, (trial / "log.txt").read_text()


def test_a_trial_ended_by_sigterm_from_outside_starts_again_without_using_an_attempt(tmp_path):
    result, rows, log = _run(tmp_path, times=1)
    assert result.exit_code == 0
    assert rows[["status", "attempts", "val_mse"]].values.tolist() == [["ok", 1, 1.5]]
    assert [line for line in log.splitlines() if line.startswith(("start", "hpt:"))] == [
        "start 1",
        "hpt: ended by SIGTERM from outside hpt (a stop of the whole process tree?): started again, "
        "not counted as an attempt",
        "start 2",
    ]


def test_a_trial_that_keeps_ending_by_sigterm_fails_after_three_starts_again(tmp_path):
    result, rows, log = _run(tmp_path, times=99)
    assert result.exit_code == 1
    assert rows[["status", "attempts"]].values.tolist() == [["failed", 1]]
    assert rows.loc[0, "error"] == ("RuntimeError: command exited with signal SIGTERM (ended by a stop signal from "
                                    "outside hpt 4 times; see log.txt)")
    assert [line for line in log.splitlines() if line.startswith("start")] == ["start 1", "start 2", "start 3",
                                                                               "start 4"]


# -- real processes: the whole tree signalled at once, then a rerun --------------------------------

def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("order", ["at once", "children first"])
def test_sigterm_to_the_whole_process_tree_fails_no_trial_and_a_rerun_runs_them(tmp_path, order):
    """systemd (KillMode=control-group) signals every process at once; Jenkins' abort signals
    the descendants, then the runner."""
    (tmp_path / "sleepy.sh").write_text('#!/bin/sh\nsleep 2\necho \'{"val_mse": 2}\'\n')
    (tmp_path / "sleepy.sh").chmod(0o755)
    out = tmp_path / "out"
    runs = []
    for name, body in (("functions", {"architecture": "tests.archs:fault",
                                      "parameters": {"kind": "sleep", "seconds": 2.0, "value": list(range(6))}}),
                       ("commands", {"command": [str(tmp_path / "sleepy.sh"), "{i}"],
                                     "parameters": {"i": list(range(6))}})):
        folder = tmp_path / name
        folder.mkdir()
        spec = write_spec(folder, name=name, **body)
        cmd = [HPT, "run", str(spec), "-o", str(out), "-j", "2"]
        proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        runs.append((cmd, proc))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(
            "trials/" in p.read_text() for p in out.glob("*/results.csv")) < 2:  # a row in each run
        time.sleep(0.05)
    time.sleep(0.5)  # trials of the next round are running
    for _, proc in runs:
        tree = _descendants(proc.pid)
        assert tree, "the runner has no workers"
        for pid in tree if order == "children first" else [proc.pid, *tree]:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if order == "children first":
            time.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
    for _, proc in runs:
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 3, err
    for folder in out.iterdir():
        rows = pd.read_csv(folder / "results.csv", keep_default_na=False)
        assert set(rows["status"]) <= {"ok"}, rows["error"].tolist()
        assert len(rows) < 6
    for cmd, _ in runs:
        again = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
    for folder in out.iterdir():
        rows = pd.read_csv(folder / "results.csv", keep_default_na=False)
        assert rows["status"].tolist() == ["ok"] * 6 and rows["trial_id"].is_unique
        assert json.loads((folder / "summary.json").read_text())["status"] == "complete"


@pytest.mark.slow
def test_a_trial_started_again_after_a_kill_says_so_in_its_log(tmp_path):
    (tmp_path / "slow_once.py").write_text(
        "import pathlib, time\n"
        "def train(params, ctx):\n"
        "    print('epoch 1', flush=True)\n"
        "    if pathlib.Path('slow').exists():\n"
        "        time.sleep(60)\n"
        "    return {'val_mse': 1.0}\n")
    (tmp_path / "slow").touch()
    spec = write_spec(tmp_path, name="killed", architecture="slow_once:train", parameters={"x": [1]})
    cmd = [HPT, "run", str(spec), "-o", "out", "-j", "1"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.stat().st_size for p in tmp_path.glob("out/*/trials/*/log.txt")):
        time.sleep(0.05)
    proc.kill()  # kill -9: no row for the running trial
    proc.wait(timeout=10)
    (tmp_path / "slow").unlink()
    again = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    (log,) = tmp_path.glob("out/*/trials/*/log.txt")
    assert log.read_text().splitlines() == [
        "epoch 1",
        "hpt: started again: an earlier run of this folder ended while this trial ran, with no row for it "
        "(the output above, and any files beside, are that run's)",
        "epoch 1",
    ]
