"""`hpt run` errors caught before anything starts (exact one-line messages, exit 2), and the
progress display."""

import io
import json
from pathlib import Path

from click.testing import CliRunner

from hpt_cli.cli import cli
from hpt_cli.cli.progress import Progress
from hpt_cli.dates import DateRange
from hpt_cli.runner.events import RunInfo, TrialOutcome
from hpt_cli.search.trial import Trial


def invoke(tmp_path: Path, body: dict, *args: str):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(body))
    return CliRunner().invoke(cli, ["run", str(spec), "-o", str(tmp_path / "out"), *args])


def test_range_without_data_is_an_error_before_anything_starts(tmp_path):
    result = invoke(tmp_path, {"architecture": "ridge", "date-range": [["2017-01-01", "2017-04-01"]]})
    assert result.exit_code == 2
    assert result.output == (
        "error: no rows of chicago_ridership in 2017-01-01..2017-04-01; "
        "the data covers 2001-01-22..2016-08-28; the bundled demo data ends in 2016: set \"data\" to a file "
        "that covers these dates, or move them into 2001-2016 (as experiments/seed-lstm-attention-bundled.json "
        "does)\n"
    )
    assert not (tmp_path / "out").exists()


def test_unknown_architecture(tmp_path):
    result = invoke(tmp_path, {"architecture": "mpl", "date-range": [["2015-01-01", "2015-04-01"]]})
    assert result.exit_code == 2
    assert result.output == (
        "error: unknown architecture 'mpl'; did you mean 'mlp'? (known: mlp, ridge, lstm, lstm-attention, "
        "branin, hartmann6; or give 'package.module:function')\n"
    )


def test_bad_max_failures_is_a_usage_error(tmp_path):
    result = invoke(tmp_path, {"architecture": "ridge"}, "--max-failures", "lots")
    assert result.exit_code == 2
    assert "expected a count (3) or a fraction (0.1 or 10%; 1.0 or 100% lets every trial fail), got 'lots'" in (
        result.output)


def test_log_limit_takes_sizes_and_none_and_refuses_anything_else(tmp_path):
    from hpt_cli.cli.run_command import LogLimit

    convert = LogLimit().convert
    assert [convert(v, None, None) for v in ("10MiB", "512 KiB", "2048", "1.5M", "none", "0")] == [
        10 * 1024 * 1024, 512 * 1024, 2048, 1572864, None, None]
    result = invoke(tmp_path, {"architecture": "ridge"}, "--log-limit", "ten megs")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].startswith(
        "error: Invalid value for '--log-limit': expected a log size such as 10MiB or 512KiB (none: no limit), "
        "got 'ten megs' (see ")


def _info():
    return RunInfo("demo-1234", "runs/demo-1234", total=3, skipped=0, workers=2, objective="val_mse",
                   mode="min", resolved_spec={})


def _outcome(i: int, status: str = "ok", value: float | None = 1.5):
    trial = Trial(i, "mlp", {"lr": i}, DateRange.from_json(["2015-01-01", "2015-02-01"]))
    metrics = {"val_mse": value} if value is not None else {}
    return TrialOutcome(trial, status, metrics, None if status == "ok" else "ValueError: x", 0.25, 1, "w0",
                        f"trials/{trial.id}")


def _summary():
    return {"status": "complete", "counts": {"ok": 2, "failed": 1, "timeout": 0, "skipped": 0, "cancelled": 0},
            "wall_time_s": 65.2, "best": {"metric": "val_mse", "value": 1.5, "trial_id": "abc"}}


def test_plain_progress_is_one_line_per_trial():
    out = io.StringIO()
    p = Progress(stream=out, live=False)
    p.run_started(_info())
    p.trial_finished(_outcome(0))
    p.trial_finished(_outcome(1, "failed", None))
    p.run_finished(_summary())
    t0, t1 = _outcome(0).trial, _outcome(1).trial
    assert out.getvalue() == (
        "run demo-1234: 3 trials on 2 workers\n"
        "results: runs/demo-1234/results.csv\n"
        f"[1/3] ok      {t0.id} mlp 2015-01-01..2015-02-01 val_mse=1.5 (0.2 s)\n"
        f"[2/3] failed  {t1.id} mlp 2015-01-01..2015-02-01 ValueError: x (0.2 s)\n"
        "done: 2 ok, 1 failed, 0 timed out in 1:05; best val_mse 1.5 (trial abc)\n"
        "results: runs/demo-1234/results.csv\n"
    )


def test_progress_counts_are_singular_for_one():
    out = io.StringIO()
    p = Progress(stream=out, live=False)
    p.run_started(RunInfo("one-1234", "runs/one-1234", total=1, skipped=0, workers=1, objective="val_mse",
                          mode="min", resolved_spec={}))
    assert out.getvalue().splitlines()[0] == "run one-1234: 1 trial on 1 worker"


def test_a_failed_trial_s_line_shows_its_error_not_its_metrics():
    """A diverged trial keeps its metrics (val_mse=nan) but its line says why it failed."""
    out = io.StringIO()
    p = Progress(stream=out, live=False)
    p.run_started(_info())
    trial = _outcome(0).trial
    p.trial_finished(TrialOutcome(trial, "failed", {"val_mse": float("inf")}, "objective val_mse is inf (the trial "
                                  "diverged?)", 0.25, 1, "w0", "trials/x"))
    p.trial_finished(TrialOutcome(trial, "ok", {"val_mse": float("nan")}, None, 0.25, 1, "w0", "trials/x"))
    lines = out.getvalue().splitlines()
    assert lines[2] == (f"[1/3] failed  {trial.id} mlp 2015-01-01..2015-02-01 objective val_mse is inf "
                        "(the trial diverged?) (0.2 s)")
    assert p.best is None  # neither inf (failed) nor nan is ever the best


def test_live_progress_redraws_one_line():
    out = io.StringIO()
    now = [100.0]
    p = Progress(stream=out, live=True, clock=lambda: now[0])
    p.run_started(_info())
    p.trial_started(_outcome(0).trial, 1, 2)
    now[0] += 10
    p.trial_finished(_outcome(0, value=2.0))
    text = out.getvalue()
    assert "\r[########................] 1/3 done, 0 failed, 1 running, best 2 ETA 0:20" in text
    assert "\n[1/3]" not in text


def test_quiet_progress_prints_only_the_summary():
    out = io.StringIO()
    p = Progress(stream=out, live=False, quiet=True)
    p.run_started(_info())
    p.trial_finished(_outcome(0))
    p.run_finished(_summary())
    assert out.getvalue().splitlines()[0].startswith("done: 2 ok")


def test_watch_ignores_a_summary_left_by_an_earlier_attempt(tmp_path):
    from hpt_cli.watch import LocalSource, Watcher

    (tmp_path / "spec.json").write_text(json.dumps({"architecture": "ridge",
                                                    "hpt": {"created_at": "2026-11-22T10:00:00.000Z"}}))
    (tmp_path / "results.csv").write_text("trial_id,status,val_mse\na,ok,1.0\n")
    (tmp_path / "summary.json").write_text(json.dumps({"ended_at": "2026-11-22T09:00:00.000Z", "exit_code": 3}))
    watcher = Watcher(LocalSource(str(tmp_path)))
    assert len(watcher.poll()) == 1 and not watcher.done
    (tmp_path / "summary.json").write_text(json.dumps({"ended_at": "2026-11-22T10:05:00.000Z", "exit_code": 0}))
    watcher.poll()
    assert watcher.done and watcher.summary["exit_code"] == 0


def test_watch_of_a_missing_folder_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["watch", str(tmp_path / "typo")])
    assert result.exit_code == 2
    assert result.output == (f"error: {tmp_path / 'typo'}: no such run folder; give the folder `hpt run` printed "
                             "(<output>/<run-id>)\n")


def test_validate_notes_what_run_would_refuse(tmp_path):
    spec = tmp_path / "s.json"
    spec.write_text('{"architecture": "nosuch"}')
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 0
    assert "note: on this machine `hpt run` would stop here: unknown architecture 'nosuch'" in result.output


def test_a_benchmark_objective_needs_no_data(tmp_path):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"architecture": "branin", "parameters": {"x1": 1.0, "x2": 2.0}}))
    result = CliRunner().invoke(cli, ["validate", str(spec)])  # no date range the data covers: fine
    assert result.exit_code == 0 and "note:" not in result.output


def test_a_malformed_dask_address_is_one_line(tmp_path):
    import pytest

    pytest.importorskip("distributed")
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"architecture": "branin", "parameters": {"x1": 1.0, "x2": 2.0}}))
    for address, why in (("notaurl", "missing port number"), ("http://127.0.0.1:1", "unknown address scheme 'http'")):
        result = CliRunner().invoke(cli, ["run", str(spec), "-o", str(tmp_path / "o"), "--executor", "dask",
                                          "--scheduler", address])
        assert result.exit_code == 2
        assert result.output == (f"error: --scheduler {address}: not a Dask scheduler address ({why}); "
                                 "give tcp://host:8786\n")


def test_on_a_terminal_the_final_line_of_a_run_with_failures_says_where_the_errors_are():
    out = io.StringIO()
    p = Progress(stream=out, live=True, clock=lambda: 0.0)
    p.run_started(_info())
    p.trial_finished(_outcome(0))
    p.trial_finished(_outcome(1, "failed", None))
    p.trial_finished(_outcome(2, "timeout", None))
    p.run_finished({**_summary(), "counts": {"ok": 1, "failed": 1, "timeout": 1, "skipped": 0, "cancelled": 0}})
    first_failed = _outcome(1).trial.id
    assert out.getvalue().splitlines()[-2].rpartition("\r")[2] == (
        "done: 1 ok, 1 failed, 1 timed out in 1:05; best val_mse 1.5 (trial abc); errors: hpt report "
        f"runs/demo-1234, or runs/demo-1234/trials/{first_failed}/log.txt")


def test_the_errors_pointer_of_a_resumed_run_names_an_earlier_failure_and_none_without_failures():
    out = io.StringIO()
    info = RunInfo("demo-1234", "gs://b/demo-1234", total=3, skipped=2, workers=2, objective="val_mse",
                   mode="min", resolved_spec={},
                   earlier=[{"status": "ok", "artifact_dir": "gs://b/demo-1234/trials/aaa"},
                            {"status": "failed", "artifact_dir": "gs://b/demo-1234/trials/bbb"}])
    p = Progress(stream=out, live=True, clock=lambda: 0.0)
    p.run_started(info)
    p.trial_finished(_outcome(0))
    p.run_finished(_summary())
    assert out.getvalue().splitlines()[-2].endswith(
        "; errors: hpt report gs://b/demo-1234, or gs://b/demo-1234/trials/bbb/log.txt")
    out = io.StringIO()
    p = Progress(stream=out, live=True, clock=lambda: 0.0)
    p.run_started(_info())
    p.run_finished({**_summary(), "counts": {"ok": 2, "failed": 0, "timeout": 0, "skipped": 0, "cancelled": 0}})
    assert out.getvalue().splitlines()[-2].rpartition("\r")[2] == (
        "done: 2 ok, 0 failed, 0 timed out in 1:05; best val_mse 1.5 (trial abc)")


def test_a_folder_holding_more_than_a_smaller_budget_asks_for_is_said_plainly():
    out = io.StringIO()
    info = RunInfo("cnt-1234", "runs/cnt-1234", total=3, skipped=6, workers=2, objective="val_mse", mode="min",
                   resolved_spec={})
    p = Progress(stream=out, live=False, clock=lambda: 0.0)
    p.run_started(info)
    p.run_finished({**_summary(), "counts": {"ok": 6, "failed": 0, "timeout": 0, "skipped": 3, "cancelled": 0}})
    lines = out.getvalue().splitlines()
    assert lines[0] == ("run cnt-1234: 3 trials on 2 workers; the run folder holds 6 finished trials, more than "
                        "this spec asks for (an earlier attempt had a larger budget): resuming")
    assert lines[-2] == ("done: 6 ok, 0 failed, 0 timed out (6 of them done before this run) in 1:05; "
                         "best val_mse 1.5 (trial abc)")


def test_a_resumed_run_with_failed_rows_says_they_are_kept_and_how_to_run_them_again():
    out = io.StringIO()
    info = RunInfo("r-1234", "runs/r-1234", total=3, skipped=2, workers=2, objective="val_mse", mode="min",
                   resolved_spec={}, earlier=[{"status": "failed"}, {"status": "timeout"}])
    Progress(stream=out, live=False, clock=lambda: 0.0).run_started(info)
    assert out.getvalue().splitlines()[-1] == (
        "note: 2 failed trials of earlier attempts are kept (a rerun skips every trial with a row); --fresh "
        "starts a new run that runs every trial again")
