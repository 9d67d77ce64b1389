"""`hpt run` through real processes: streaming rows, faults, signals, resume, no shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import HPT, ROOT, subprocess_env, write_spec

pytestmark = pytest.mark.slow


def env_for(pids: Path) -> dict[str, str]:
    return subprocess_env(HPT_TEST_PIDS=str(pids))


def run_dir(output: Path) -> Path:
    (folder,) = [p for p in output.iterdir() if p.is_dir()]
    return folder


def assert_all_gone(pids: Path, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    alive = [int(p.name) for p in pids.iterdir()]
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _alive(pid)]
        time.sleep(0.05)
    assert alive == [], f"processes left behind: {alive}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited; only its parent's wait is missing
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def pids(tmp_path):
    folder = tmp_path / "pids"
    folder.mkdir()
    return folder


def test_rows_stream_while_the_run_goes_on_and_are_always_whole(tmp_path, pids):
    spec = write_spec(tmp_path, architecture="tests.archs:fault",
                      parameters={"kind": "sleep", "seconds": 0.3, "value": list(range(12))})
    out = tmp_path / "out"
    proc = subprocess.Popen([HPT, "run", str(spec), "-o", str(out), "-j", "2"], env=env_for(pids),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        csv = list(out.glob("*/results.csv"))
        if csv:
            frame = pd.read_csv(csv[0])
            assert frame["status"].eq("ok").all()
            assert frame["trial_id"].str.fullmatch(r"[0-9a-f]{12}").all()
            assert frame["val_mse"].notna().all()
            seen.append(len(frame))
        time.sleep(0.02)
    assert proc.wait(timeout=30) == 0, proc.stdout.read().decode()
    assert any(0 < n < 12 for n in seen), f"no partial state seen: {sorted(set(seen))}"
    assert seen == sorted(seen)
    frame = pd.read_csv(run_dir(out) / "results.csv")
    assert sorted(frame["value"]) == list(range(12))


def test_faults_are_rows_and_the_run_goes_on(tmp_path, pids):
    spec = write_spec(tmp_path, architecture="tests.archs:fault",
                      parameters={"kind": ["ok", "raise", "segv", "hang", "exit"]},
                      trial={"timeout": "3s"})
    out = tmp_path / "out"
    proc = subprocess.run([HPT, "run", str(spec), "-o", str(out), "-j", "2"], env=env_for(pids),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    folder = run_dir(out)
    rows = pd.read_csv(folder / "results.csv", keep_default_na=False).set_index("kind")
    assert rows.loc["ok", "status"] == "ok" and float(rows.loc["ok", "val_mse"]) == 1.0
    assert rows.loc["raise", "status"] == "failed"
    assert rows.loc["raise", "error"].startswith("ValueError: bad value for trial ")
    assert rows.loc["segv", "status"] == "failed"
    assert rows.loc["segv", "error"] == "worker died with signal SIGSEGV"
    assert rows.loc["exit", "status"] == "failed"
    assert rows.loc["exit", "error"] == "worker exited with code 1"
    assert rows.loc["hang", "status"] == "timeout"
    assert rows.loc["hang", "error"].startswith("timed out after 3")
    log = (folder / rows.loc["raise", "artifact_dir"] / "log.txt").read_text()
    assert "Traceback (most recent call last)" in log and "ValueError: bad value" in log
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["counts"] == {"ok": 1, "stopped": 0, "failed": 3, "timeout": 1, "skipped": 0, "cancelled": 0}
    assert summary["exit_code"] == 1
    assert_all_gone(pids)


def test_max_failures_and_retries(tmp_path, pids):
    spec = write_spec(tmp_path, architecture="tests.archs:fault",
                      parameters={"kind": ["ok", "raise", "flaky"]}, trial={"retries": 1})
    out = tmp_path / "out"
    proc = subprocess.run([HPT, "run", str(spec), "-o", str(out), "-j", "2", "--max-failures", "1"],
                          env=env_for(pids), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = pd.read_csv(run_dir(out) / "results.csv", keep_default_na=False).set_index("kind")
    assert rows.loc["flaky", "status"] == "ok" and int(rows.loc["flaky", "attempts"]) == 2
    assert rows.loc["raise", "status"] == "failed" and int(rows.loc["raise", "attempts"]) == 2


def test_sigterm_stops_within_seconds_and_a_rerun_completes_the_rest(tmp_path, pids):
    spec = write_spec(tmp_path, architecture="tests.archs:sleepy",
                      parameters={"seconds": 1.0, "i": list(range(10))})
    out = tmp_path / "out"
    cmd = [HPT, "run", str(spec), "-o", str(out), "-j", "2"]
    proc = subprocess.Popen(cmd, env=env_for(pids), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        csv = list(out.glob("*/results.csv"))
        if csv and len(pd.read_csv(csv[0])) >= 2:
            break
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 3, proc.stdout.read().decode()
    assert time.monotonic() - sent < 5
    assert_all_gone(pids)
    folder = run_dir(out)
    first = pd.read_csv(folder / "results.csv")
    assert 2 <= len(first) < 10
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["exit_code"] == 3

    again = subprocess.run(cmd, env=env_for(pids), capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    final = pd.read_csv(folder / "results.csv")
    assert sorted(final["i"]) == list(range(10))
    assert final["trial_id"].is_unique
    assert json.loads((folder / "summary.json").read_text())["counts"]["skipped"] == len(first)
    assert f"{len(first)} already done (resuming)" in again.stderr


def test_a_parameter_value_never_reaches_a_shell(tmp_path, pids):
    spec = write_spec(tmp_path, command=[sys.executable, str(ROOT / "tests/command_trial.py"), "stdout", "{x}"],
                      parameters={"x": ["; touch pwned #"]})
    out = tmp_path / "out"
    proc = subprocess.run([HPT, "run", str(spec), "-o", str(out)], env=env_for(pids), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (trial,) = (run_dir(out) / "trials").iterdir()
    seen = json.loads((trial / "seen.json").read_text())
    assert seen["argv"] == ["; touch pwned #"]
    assert not list(tmp_path.rglob("pwned"))


def test_a_trial_module_in_the_working_folder_imports_in_the_workers(tmp_path, pids):
    # Workers boot while the data is checked; they must still see the folder `hpt run` ran from,
    # which resolving a 'module:function' architecture adds to sys.path.
    (tmp_path / "beside.py").write_text("def train(params, ctx):\n    return {'val_mse': params['x'] * 2.0}\n")
    spec = write_spec(tmp_path, architecture="beside:train", parameters={"x": [1, 2, 3]})
    out = tmp_path / "out"
    proc = subprocess.run([HPT, "run", str(spec), "-o", str(out), "-j", "2", "-q"], env=env_for(pids),
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(run_dir(out) / "results.csv")
    assert sorted(frame["val_mse"]) == [2.0, 4.0, 6.0]


def test_the_quickstart_runs_real_models(tmp_path, pids):
    out = tmp_path / "out"
    proc = subprocess.run([HPT, "run", str(ROOT / "experiments/quickstart.json"), "-o", str(out), "-q"],
                          env=env_for(pids), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(run_dir(out) / "results.csv")
    assert frame["status"].eq("ok").all()
    mlp = frame[frame["architecture"] == "mlp"]
    assert mlp["val_mse"].nunique() > 1 and frame["val_mse"].gt(0).all()
    assert set(frame["architecture"]) == {"ridge", "mlp"}
    for folder in frame["artifact_dir"]:
        assert (run_dir(out) / folder / "model.npz").exists()


def test_a_closed_log_pipe_does_not_stop_the_run(tmp_path, pids):
    spec = write_spec(tmp_path, architecture="tests.archs:fault",
                      parameters={"kind": "sleep", "seconds": 0.1, "value": list(range(6))})
    out = tmp_path / "out"
    proc = subprocess.Popen([HPT, "run", str(spec), "-o", str(out), "-j", "2"], env=env_for(pids),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc.stderr.readline()
    proc.stderr.close()  # as `hpt run ... 2>&1 | head -1` does
    assert proc.wait(timeout=60) == 0
    assert len(pd.read_csv(run_dir(out) / "results.csv")) == 6


def test_a_command_s_background_children_end_with_it(tmp_path, pids):
    script = tmp_path / "trial.sh"
    script.write_text('#!/bin/sh\nsleep 30 &\ntouch "$HPT_TEST_PIDS/$!"\n'
                      'if [ "$1" = "hang" ]; then sleep 30; fi\necho \'{"val_mse": 1}\'\n')
    script.chmod(0o755)
    spec = write_spec(tmp_path, command=[str(script), "{mode}"], parameters={"mode": ["hang", "done"]},
                      trial={"timeout": "2s"})
    out = tmp_path / "out"
    started = time.monotonic()
    proc = subprocess.run([HPT, "run", str(spec), "-o", str(out), "-j", "2"], env=env_for(pids), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - started < 6  # the timeout fires on time, not after the pipes' grace
    rows = pd.read_csv(run_dir(out) / "results.csv", keep_default_na=False).set_index("mode")
    assert rows.loc["done", "status"] == "ok"
    assert rows.loc["hang", "status"] == "timeout"
    assert rows.loc["hang", "error"] == "TimeoutError: command ran past its timeout of 2s and was killed"
    assert_all_gone(pids, within=2.0)  # both background sleeps, though the run's workers are gone too
