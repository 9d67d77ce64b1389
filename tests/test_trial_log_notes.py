"""A trial's log.txt says why it ended where the trial could not (its worker died, or it was
killed for its timeout), each retry's output starts with an `hpt: attempt N of M` line, and the
metrics rule (numbers; strings and bools kept in `extra`; anything else fails the trial, naming
the metric) holds for returned metrics and for `ctx.report` alike. Real `hpt run` processes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import HPT, subprocess_env, write_spec

pytestmark = pytest.mark.slow

OOM = "worker died with signal SIGKILL (out of memory? the kernel's OOM killer sends SIGKILL)"
RULE = ("a metric must be a number, a string or a bool: return one number (e.g. float(x.mean())) and save "
        "arrays and other values as files in the trial's artifact_dir")


def run(tmp_path: Path, **body) -> tuple[subprocess.CompletedProcess, Path, pd.DataFrame]:
    spec = write_spec(tmp_path, **body)
    out = tmp_path / "out"
    proc = subprocess.run([HPT, "run", str(spec), "-o", str(out), "-j", "3"], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    rows = pd.read_csv(folder / "results.csv", keep_default_na=False, dtype=str).set_index("kind")
    return proc, folder, rows


def log_of(folder: Path, rows: pd.DataFrame, kind: str) -> str:
    return (folder / rows.loc[kind, "artifact_dir"] / "log.txt").read_text()


def test_a_trial_that_could_not_say_why_it_ended_gets_hpt_s_line_in_its_log(tmp_path):
    proc, folder, rows = run(tmp_path, architecture="tests.note_archs:dies",
                             parameters={"kind": ["exit7", "sigkill", "hang", "nan", "raise", "ok"]},
                             trial={"timeout": "2s"})
    assert proc.returncode == 1, proc.stderr
    assert rows.loc["exit7", "error"] == "worker exited with code 7"
    assert log_of(folder, rows, "exit7") == "half a line\nhpt: worker exited with code 7\n"
    assert rows.loc["sigkill", "status"] == "failed" and rows.loc["sigkill", "error"] == OOM
    assert log_of(folder, rows, "sigkill") == f"hpt: {OOM}\n"
    assert rows.loc["hang", "status"] == "timeout" and rows.loc["hang", "error"] == "timed out after 2.0 s"
    assert log_of(folder, rows, "hang") == "hpt: killed after 2.0 s (trial.timeout 2s)\n"
    assert log_of(folder, rows, "nan") == "hpt: objective val_mse is nan (the trial diverged?)\n"
    raised = log_of(folder, rows, "raise")  # its own traceback says why: no line of hpt's
    assert raised.startswith("Traceback (most recent call last):\n") and raised.endswith("ValueError: bad\n")
    assert "hpt:" not in raised
    assert log_of(folder, rows, "ok") == "trained ok\n"


def test_each_retry_starts_with_its_attempt_and_timeouts_are_retried_too(tmp_path):
    proc, folder, rows = run(tmp_path, architecture="tests.note_archs:dies",
                             parameters={"kind": ["exit7", "hang", "flaky"]},
                             trial={"timeout": "1s", "retries": 2})
    assert proc.returncode == 1, proc.stderr
    assert rows.loc["exit7", "attempts"] == "3" and rows.loc["exit7", "status"] == "failed"
    assert log_of(folder, rows, "exit7") == (
        "half a line\nhpt: worker exited with code 7\n"
        "hpt: attempt 2 of 3\nhalf a line\nhpt: worker exited with code 7\n"
        "hpt: attempt 3 of 3\nhalf a line\nhpt: worker exited with code 7\n")
    assert rows.loc["hang", "attempts"] == "3" and rows.loc["hang", "status"] == "timeout"
    killed = "hpt: killed after 1.0 s (trial.timeout 1s)\n"
    assert log_of(folder, rows, "hang") == (
        f"{killed}hpt: attempt 2 of 3\n{killed}hpt: attempt 3 of 3\n{killed}")
    assert rows.loc["flaky", "attempts"] == "2" and rows.loc["flaky", "status"] == "ok"
    flaky = log_of(folder, rows, "flaky")
    assert flaky.startswith("Traceback (most recent call last):\n")
    assert flaky.endswith("RuntimeError: first attempt fails\nhpt: attempt 2 of 3\ntrained flaky\n")


def test_strings_and_bools_are_kept_and_other_values_fail_naming_the_metric(tmp_path):
    kinds = ["kept", "array", "list", "report-list", "string-objective", "bool-objective"]
    proc, folder, rows = run(tmp_path, architecture="tests.note_archs:metrics", parameters={"kind": kinds},
                             metrics=["val_mse", "val_mae"])
    assert proc.returncode == 1, proc.stderr
    kept = rows.loc["kept"]
    assert kept["status"] == "ok" and kept["error"] == ""
    assert kept["val_mse"] == "0.5" and kept["val_mae"] == ""  # a metric column holds numbers only
    assert json.loads(kept["extra"]) == {"converged": True, "n": 3.0, "note": "hello", "one": 2.5,
                                         "val_mae": "n/a"}
    curve = (folder / kept["artifact_dir"] / "curve.csv").read_text()
    assert curve == "epoch,loss,note,diverged\n0,0.5,warming up,false\n"
    assert rows.loc["array", "status"] == "failed"
    assert rows.loc["array", "error"] == f"TypeError: metric 'pred' is a numpy ndarray of shape (2,); {RULE}"
    assert rows.loc["list", "error"] == f"TypeError: metric 'history' is [1.0, 2.0] (list); {RULE}"
    assert rows.loc["report-list", "error"] == f"TypeError: metric 'loss' is [1.0, 2.0] (list); {RULE}"
    assert rows.loc["string-objective", "status"] == "failed"
    assert rows.loc["string-objective", "error"] == (
        "objective val_mse is 'bad' (str); the objective must be a number")
    assert json.loads(rows.loc["string-objective", "extra"]) == {"val_mse": "bad"}  # kept, as NaN is
    assert rows.loc["bool-objective", "error"] == "objective val_mse is True (bool); the objective must be a number"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["counts"]["ok"] == 1 and summary["counts"]["failed"] == 5
    assert summary["best"]["trial_id"] == rows.loc["kept", "trial_id"]


def test_a_chatty_trial_s_log_keeps_its_head_and_tail_within_log_limit(tmp_path):
    spec = write_spec(tmp_path, architecture="tests.note_archs:chatty", parameters={"kind": ["ok", "raise"]})
    out = tmp_path / "out"
    proc = subprocess.run([HPT, "run", str(spec), "-o", str(out), "-j", "2", "--log-limit", "16KiB"],
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    rows = pd.read_csv(folder / "results.csv", keep_default_na=False, dtype=str).set_index("kind")
    assert rows.loc["ok", "status"] == "ok" and rows.loc["raise", "error"] == "ValueError: diverged at the end"
    for kind, last in (("ok", "done\n"), ("raise", "ValueError: diverged at the end\n")):
        log = (folder / rows.loc[kind, "artifact_dir"] / "log.txt").read_bytes()
        assert len(log) <= 16 * 1024 + 200, len(log)
        head, _, rest = log.decode().partition("\nhpt: ")
        note, _, tail = rest.partition("\n")
        assert head.startswith("step 00000 loss 1.000000 ") and head.endswith("x" * 20)  # whole lines
        note = "hpt: " + note
        m = re.fullmatch(r"hpt: (\d+) bytes of this log left out here \(([\d.]+ KiB) in all; "
                         r"--log-limit 16 KiB keeps the first and the last 8 KiB\)", note)
        assert m, note
        assert tail.endswith(last) and "from a child process" not in log.decode()
        if kind == "ok":  # 4000 lines of 46 bytes, two from the middle, "done": all accounted for
            assert int(m[1]) + len(log) - len(note) - 1 == 4000 * 46 + 10 + 21 + 5
            assert m[2] == "179.7 KiB"
        else:
            assert "Traceback (most recent call last):" in tail
