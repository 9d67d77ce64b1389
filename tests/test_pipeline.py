"""The contract with Jenkins and cron: exit codes, machine-readable records, plain logs, time
caps and locks, through real `hpt run` processes."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import xmlschema

from tests.helpers import HPT, subprocess_env, write_spec

pytestmark = pytest.mark.slow
JUNIT_XSD = Path(__file__).with_name("junit.xsd")


def run(spec: Path, out: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([HPT, "run", str(spec), "-o", str(out), "-j", "2", *args], env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "body, code",
    [
        ({"architecture": "tests.archs:fault", "parameters": {"kind": "ok", "value": [1, 2]}}, 0),
        ({"architecture": "tests.archs:fault", "parameters": {"kind": ["ok", "raise"]}}, 1),
        ({"architecture": "tests.archs:fault", "paramters": {}}, 2),
    ],
    ids=["ok", "failures", "bad-spec"],
)
def test_exit_codes(tmp_path, body, code):
    result = run(write_spec(tmp_path, **body), tmp_path / "out")
    assert result.returncode == code, result.stderr


def test_max_failures_as_a_fraction(tmp_path):
    spec = write_spec(tmp_path, architecture="tests.archs:fault", parameters={"kind": ["ok", "raise"], "value": [1, 2]})
    assert run(spec, tmp_path / "out", "--max-failures", "50%").returncode == 0
    assert run(spec, tmp_path / "out2", "--max-failures", "0.25").returncode == 1


def test_max_time_stops_dispatching_and_exits_6(tmp_path):
    spec = write_spec(tmp_path, name="capped", architecture="tests.archs:fault",
                      parameters={"kind": "sleep", "seconds": 0.5, "value": list(range(20))})
    started = time.monotonic()
    result = run(spec, tmp_path / "out", "--max-time", "1.2s", "--grace", "10s")
    assert result.returncode == 6, result.stderr
    assert time.monotonic() - started < 10
    (folder,) = (tmp_path / "out").iterdir()
    rows = pd.read_csv(folder / "results.csv")
    assert 2 <= len(rows) < 20 and rows["status"].eq("ok").all()  # running trials finished in grace
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "time_cap" and summary["exit_code"] == 6
    assert "stopped at --max-time" in result.stderr


def test_grace_over_cancels_the_running_trials(tmp_path):
    spec = write_spec(tmp_path, name="graceless", architecture="tests.archs:fault",
                      parameters={"kind": "sleep", "seconds": 30, "value": [1, 2]})
    started = time.monotonic()
    result = run(spec, tmp_path / "out", "--max-time", "0.5s", "--grace", "0.5s")
    assert result.returncode == 6 and time.monotonic() - started < 10
    (folder,) = (tmp_path / "out").iterdir()
    assert json.loads((folder / "summary.json").read_text())["counts"]["cancelled"] == 2


def test_events_junit_and_summary_files(tmp_path):
    spec = write_spec(tmp_path, name="records", architecture="tests.archs:fault",
                      parameters={"kind": ["ok", "raise"], "value": [1, 2]})
    result = run(spec, tmp_path / "out", "--events", "-", "--junit", str(tmp_path / "junit.xml"),
                 "--summary-json", str(tmp_path / "summary.json"))
    assert result.returncode == 1
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("trial_started") == 4 and kinds.count("trial_finished") == 2 and kinds.count("trial_failed") == 2
    assert events[0]["spec"]["name"] == "records" and events[0]["run_id"].startswith("records-")
    failed = [e for e in events if e["event"] == "trial_failed"]
    assert all(e["error"].startswith("ValueError: bad value for trial") for e in failed)
    assert all(e["metrics"] == {"val_mse": e2["metrics"]["val_mse"]} for e in events if e["event"] == "trial_finished"
               for e2 in [e])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == events[-1]["summary"] and summary["counts"]["failed"] == 2

    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(tmp_path / "junit.xml"))
    junit = (tmp_path / "junit.xml").read_text()
    assert 'tests="4" failures="2" errors="0"' in junit
    assert junit.count("<failure ") == 2 and "ValueError: bad value for trial" in junit


def test_a_log_to_a_file_is_plain_lines(tmp_path):
    spec = write_spec(tmp_path, name="plain", architecture="tests.archs:fault",
                      parameters={"kind": "sleep", "seconds": 0.1, "value": list(range(12))})
    log = tmp_path / "log.txt"
    with open(log, "w") as fh:
        proc = subprocess.run([HPT, "run", str(spec), "-o", str(tmp_path / "out"), "-j", "2", "--status-every", "1"],
                              env=subprocess_env(TERM="xterm"), stdout=fh, stderr=subprocess.STDOUT, timeout=60)
    assert proc.returncode == 0
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    trial_lines = [line for line in lines if re.match(r"\[\d+/12\] ", line)]
    status_lines = [line for line in lines if line.startswith("status: ")]
    assert len(trial_lines) == 12
    assert len(lines) <= 12 + len(status_lines) + 4  # run + results lines at start, done + results at end


def test_two_runs_at_once_one_runs_the_other_exits_5(tmp_path):
    spec = write_spec(tmp_path, name="locked", architecture="tests.archs:fault",
                      parameters={"kind": "sleep", "seconds": 0.3, "value": list(range(8))})
    cmd = [HPT, "run", str(spec), "-o", str(tmp_path / "out"), "-j", "2"]
    procs = [subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=60), p.communicate()[1]) for p in procs]
    assert sorted(code for code, _ in results) == [0, 5], results
    (err,) = [err for code, err in results if code == 5]
    assert re.search(r"^error: .*locked-\w+ is locked by pid \d+ on .* since .*; --lock wait waits for it, "
                     r"--lock skip exits 0 instead$", err.strip(), re.M), err
    (folder,) = (tmp_path / "out").iterdir()
    frame = pd.read_csv(folder / "results.csv")
    assert len(frame) == 8 and frame["trial_id"].is_unique


def start_holding_run(tmp_path: Path, name: str, seconds: float, trials: int):
    """Start a run of sleeping trials and return (its command, its process) once it holds the lock."""
    spec = write_spec(tmp_path, name=name, architecture="tests.archs:fault",
                      parameters={"kind": "sleep", "seconds": seconds, "value": list(range(trials))})
    cmd = [HPT, "run", str(spec), "-o", str(tmp_path / "out"), "-j", "2"]
    first = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not list((tmp_path / "out").glob("*/results.csv")) and time.monotonic() < deadline:
        time.sleep(0.02)
    return cmd, first


def test_lock_wait_and_skip(tmp_path):
    cmd, first = start_holding_run(tmp_path, "waiter", seconds=0.6, trials=10)
    waiting = subprocess.Popen(cmd + ["--lock", "wait"], env=subprocess_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    skipped = subprocess.run(cmd + ["--lock", "skip"], env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert first.wait(timeout=60) == 0
    assert waiting.wait(timeout=60) == 0
    waited = waiting.communicate()[1]
    assert skipped.returncode == 0 and "skipped: " in skipped.stderr, skipped.stderr
    assert "waiting for pid " in waited
    assert "10 already done (resuming)" in waited
    (folder,) = (tmp_path / "out").iterdir()
    assert pd.read_csv(folder / "results.csv")["trial_id"].is_unique


def test_monthly_cron_gets_a_new_run_each_month_and_resumes_within_it(tmp_path):
    spec = write_spec(tmp_path, name="monthly", architecture="ridge",
                      parameters={"alpha": [0.1, 1.0]},
                      **{"date-range": {"rolling": {"count": 2, "length": "1M", "step": "1M", "end": "today"}}})
    out = tmp_path / "out"
    july = run(spec, out, "--today", "2016-07-03", "-q")
    july_again = run(spec, out, "--today", "2016-07-28")
    august = run(spec, out, "--today", "2016-08-02", "-q")
    assert [july.returncode, july_again.returncode, august.returncode] == [0, 0, 0]
    assert "4 already done (resuming)" in july_again.stderr
    runs = sorted(p.name for p in out.iterdir())
    assert len(runs) == 2 and all(r.startswith("monthly-") for r in runs)


def test_a_rerun_keeps_the_failures_in_its_exit_code_and_summary(tmp_path):
    spec = write_spec(tmp_path, name="refail", architecture="tests.archs:fault",
                      parameters={"kind": ["ok", "raise"], "value": [1, 2]})
    first = run(spec, tmp_path / "out")
    again = run(spec, tmp_path / "out")
    assert (first.returncode, again.returncode) == (1, 1)
    (folder,) = (tmp_path / "out").iterdir()
    counts = json.loads((folder / "summary.json").read_text())["counts"]
    assert counts["ok"] == 2 and counts["failed"] == 2 and counts["skipped"] == 4


def test_sigterm_while_waiting_for_the_lock_exits_3_at_once(tmp_path):
    import signal

    cmd, first = start_holding_run(tmp_path, "waitstop", seconds=1.0, trials=8)
    waiting = subprocess.Popen(cmd + ["--lock", "wait"], env=subprocess_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert "waiting for pid " in waiting.stderr.readline()  # the one line before it waits
    waiting.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    assert waiting.wait(timeout=10) == 3
    assert time.monotonic() - sent < 5
    assert "interrupted while waiting for" in waiting.communicate()[1]
    assert first.wait(timeout=60) == 0
    (folder,) = (tmp_path / "out").iterdir()
    assert json.loads((folder / "summary.json").read_text())["status"] == "complete"


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "/etc/passwd"], "cannot create the run folder"),
        (["--junit", "/proc/hpt-no/j.xml"], "Invalid value for --junit: cannot write /proc/hpt-no/j.xml"),
        (["--gpus", "9"], "error: --gpus 9: no GPU 9 here"),
    ],
)
def test_unusable_outputs_and_devices_are_exit_2(tmp_path, args, message):
    spec = write_spec(tmp_path, architecture="tests.archs:fault", parameters={"kind": "ok"})
    result = subprocess.run([HPT, "run", str(spec), "-o", str(tmp_path / "out"), *args], env=subprocess_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr, result.stderr
