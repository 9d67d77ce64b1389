"""Ctrl-C in any hpt command is exit 3 (interrupted) with one line, never click's "Aborted!" and
exit 1 (which means "trials failed"); `hpt run` keeps its own SIGINT handling. And counts in
`hpt expand` / `hpt validate` are singular where they are one."""

import json
import selectors
import signal
import subprocess
import time

import click
import pytest
from click.testing import CliRunner

from hpt_cli.cli import cli
from tests.helpers import HPT, subprocess_env, write_spec


def test_ctrl_c_in_watch_is_exit_3_and_one_line(tmp_path, monkeypatch):
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr("hpt_cli.watch.Watcher.poll", interrupted)
    (tmp_path / "results.csv").write_text("trial_id,status\n")  # a run folder
    result = CliRunner().invoke(cli, ["watch", str(tmp_path)])
    assert result.exit_code == 3
    assert result.stdout == f"watching {tmp_path}\n"
    assert result.stderr == "interrupted\n"


def test_an_abort_in_sync_is_exit_3_and_one_line(tmp_path, monkeypatch):
    def aborted(spool, timeout, **options):
        raise click.Abort

    monkeypatch.setattr("hpt_cli.storage.remote.sync_spool", aborted)
    result = CliRunner().invoke(cli, ["sync", str(tmp_path)])
    assert result.exit_code == 3
    assert result.output == "interrupted\n"


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout), "no output in time"
        return proc.stdout.readline()


@pytest.mark.slow
def test_sigint_to_a_real_watch_exits_3(tmp_path):
    (tmp_path / "results.csv").write_text("trial_id,status\n")  # a run that has not finished
    proc = subprocess.Popen([HPT, "watch", str(tmp_path), "--interval", "0.1"], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _read_line(proc, 30) == f"watching {tmp_path}\n"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 3
    assert err == "interrupted\n"


def _run_until_rows(tmp_path, rows: int, trials: int = 12, **popen):
    """A real `hpt run` of 1-second trials on 2 workers, once results.csv holds `rows` lines."""
    spec = write_spec(tmp_path, name="sigint", architecture="tests.archs:fault",
                      parameters={"kind": "sleep", "seconds": 1.0, "value": list(range(trials))})
    out = tmp_path / "out"
    proc = subprocess.Popen([HPT, "run", str(spec), "-o", str(out), "-j", "2"], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
            len(p.read_text().splitlines()) >= rows for p in out.glob("*/results.csv")):
        time.sleep(0.05)
    return proc, out


@pytest.mark.slow
@pytest.mark.parametrize("sig, again", [(signal.SIGINT, "Ctrl-C again"), (signal.SIGHUP, "send SIGHUP again")])
def test_sigint_or_a_closed_terminal_stops_hpt_run_cleanly(tmp_path, sig, again):
    proc, out = _run_until_rows(tmp_path, 3)
    try:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    lines = err.splitlines()
    assert f"{sig.name}: stopping; finished trials are kept ({again} to quit at once)" in lines
    assert lines[-2].startswith("interrupted: ") and "interrupted" not in lines  # the run's own summary
    (folder,) = out.iterdir()
    assert json.loads((folder / "summary.json").read_text())["status"] == "interrupted"


@pytest.mark.slow
def test_under_nohup_a_closed_terminal_does_not_stop_the_run(tmp_path):
    ignore_hangup = lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)  # noqa: E731 - what nohup does
    proc, out = _run_until_rows(tmp_path, 2, trials=4, preexec_fn=ignore_hangup)
    try:
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    (folder,) = out.iterdir()
    assert json.loads((folder / "summary.json").read_text())["counts"]["ok"] == 4


def test_one_configuration_is_singular(tmp_path):
    spec = tmp_path / "one.json"
    spec.write_text(json.dumps({"architecture": "ridge", "parameters": {"alpha": 1.0},
                                "date-range": [["2015-01-01", "2015-02-01"]]}))
    expand = CliRunner().invoke(cli, ["expand", str(spec)])
    assert expand.exit_code == 0
    assert expand.output.splitlines()[2] == "trials   1 = 1 configuration x 1 date range x 1 repeat"
    assert "first 1 of 1 trial:\n" in expand.output
    validate = CliRunner().invoke(cli, ["validate", str(spec)])
    assert validate.stdout == f"ok: {spec}: 1 trial (ridge: 1 configuration x 1 date range x 1 repeat)\n"


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"architecture": "mlp", "paramters": {}}')
    plain = CliRunner().invoke(cli, ["validate", str(bad)])
    debug = CliRunner().invoke(cli, ["--debug", "validate", str(bad)])
    assert plain.exit_code == debug.exit_code == 2
    assert "Traceback" not in plain.output
    assert "Traceback (most recent call last)" in debug.output
    assert debug.output.rstrip().endswith(plain.output.rstrip())
