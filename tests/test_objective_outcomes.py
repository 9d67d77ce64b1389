"""A trial whose objective is NaN, infinite or missing is `failed` (review 2, finding 11): the
run's summary, its progress lines, the searcher and `hpt report` all agree."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pandas as pd
import pytest

from hpt_cli.executors import Executor, JobResult
from hpt_cli.runner import metric_columns
from hpt_cli.runner.loop import Runner, objective_problem
from hpt_cli.search import make_searcher
from hpt_cli.search.base import Searcher
from hpt_cli.spec import parse_spec
from hpt_cli.storage.local import LocalRunStore
from hpt_cli.trialrun import STOPPED_KEY
from tests.helpers import HPT, subprocess_env, write_spec

NAN, INF = float("nan"), float("inf")


class Inline(Executor):
    """One slot; a job's result is `outcome(x1, attempt)`: a metrics dict, or an exception."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.pending: list[JobResult] = []

    def start(self):
        pass

    def submit(self, job):
        attempt = int(job.key.rpartition("#")[2])
        try:
            value = self.outcome(job.payload.params["x1"], attempt)
        except Exception as exc:  # noqa: BLE001 - the trial's failure
            self.pending.append(JobResult(job.key, "failed", error=f"{type(exc).__name__}: {exc}", worker="w0",
                                          started_at=1.0, ended_at=2.0))
            return
        self.pending.append(JobResult(job.key, "ok", value=value, worker="w0", started_at=1.0, ended_at=2.0))

    def free_slots(self):
        return 0 if self.pending else 1

    def wait(self, timeout=None):
        out, self.pending = self.pending, []
        return out

    def shutdown(self, cancel=True):
        return self.wait()


class Told(Searcher):
    """A searcher's view: what the runner told it."""

    def __init__(self, inner):
        self.inner, self.told = inner, {}

    def ask(self):
        return self.inner.ask()

    def total(self):
        return self.inner.total()

    def tell(self, trial, result, stopped=False):
        self.told[trial.params["x1"]] = (result, "stopped") if stopped else result


def run(tmp_path, outcome, values, retries=0, scheduler=None, max_failures=0):
    body = {"name": "obj", "architecture": "branin", "parameters": {"x1": values, "x2": 1.0},
            "trial": {"retries": retries}}
    if scheduler:
        body["scheduler"] = scheduler
    spec = parse_spec(json.dumps(body))
    searcher = Told(make_searcher(spec))
    store = LocalRunStore(tmp_path / "obj-1")
    result = Runner(spec, "obj-1", searcher, Inline(outcome), store, metric_columns(spec), 1,
                    max_failures=max_failures).run()
    rows = pd.read_csv(tmp_path / "obj-1" / "results.csv", keep_default_na=False).set_index("x1")
    return result, rows, searcher.told


def test_nan_inf_and_missing_objectives_are_failed_rows_with_their_metrics(tmp_path):
    returned = {1: {"val_mse": NAN, "loss": 0.5}, 2: {"val_mse": INF}, 3: {"val_mse": -INF},
                4: {"val_mae": 1.0, "loss": 0.25}, 5: {}, 6: {"val_mse": 3.0}}
    result, rows, told = run(tmp_path, lambda x1, attempt: returned[x1], list(returned))
    assert rows["status"].to_dict() == {1: "failed", 2: "failed", 3: "failed", 4: "failed", 5: "failed", 6: "ok"}
    assert rows["error"].to_dict() == {
        1: "objective val_mse is nan (the trial diverged?)",
        2: "objective val_mse is inf (the trial diverged?)",
        3: "objective val_mse is -inf (the trial diverged?)",
        4: "returned no val_mse, the objective (it returned: val_mae, loss)",
        5: "returned no val_mse, the objective (it returned: no metrics)",
        6: "",
    }
    assert rows.loc[1, "val_mse"] == "nan" or math.isnan(float(rows.loc[1, "val_mse"]))  # the metrics are kept
    assert float(rows.loc[2, "val_mse"]) == INF
    assert json.loads(rows.loc[1, "extra"]) == {"loss": 0.5}
    assert result.counts["failed"] == 5 and result.counts["ok"] == 1 and result.exit_code == 1
    assert result.summary["best"]["value"] == 3.0  # never inf
    assert told == {1: None, 2: None, 3: None, 4: None, 5: None, 6: {"val_mse": 3.0}}


def test_only_infinite_values_is_no_best_and_exit_1(tmp_path):
    result, rows, _ = run(tmp_path, lambda x1, attempt: {"val_mse": INF}, [1, 2])
    assert result.summary["best"] is None and result.exit_code == 1
    assert set(rows["status"]) == {"failed"}


def test_a_nan_objective_is_retried_like_any_failure(tmp_path):
    result, rows, told = run(tmp_path, lambda x1, attempt: {"val_mse": NAN if attempt == 1 else 2.0}, [1],
                             retries=1)
    assert rows.loc[1, "status"] == "ok" and int(rows.loc[1, "attempts"]) == 2 and rows.loc[1, "error"] == ""
    assert result.exit_code == 0 and told == {1: {"val_mse": 2.0}}
    result, rows, _ = run(tmp_path / "again", lambda x1, attempt: {"val_mse": NAN}, [1], retries=2)
    assert rows.loc[1, "status"] == "failed" and int(rows.loc[1, "attempts"]) == 3


def test_a_stopped_trial_may_lack_the_objective_but_not_diverge(tmp_path):
    """The scheduler stops a trial at its last `ctx.report`, which may hold another metric only
    (the scheduler's own): still `stopped`. A NaN objective there is a diverged trial: failed."""
    returned = {1: {"loss": 0.5, STOPPED_KEY: 3}, 2: {"val_mse": NAN, STOPPED_KEY: 3},
                3: {"val_mse": 4.0, STOPPED_KEY: 3}}
    result, rows, told = run(tmp_path, lambda x1, attempt: returned[x1], list(returned),
                             scheduler={"type": "asha", "metric": "loss", "grace": 1})
    assert rows["status"].to_dict() == {1: "stopped", 2: "failed", 3: "stopped"}
    assert rows.loc[2, "error"] == "objective val_mse is nan (the trial diverged?)"
    assert {x1: json.loads(extra)["epochs_run"] for x1, extra in rows["extra"].items()} == {1: 3, 2: 3, 3: 3}
    assert result.counts["stopped"] == 2 and result.counts["failed"] == 1
    assert told == {1: ({"loss": 0.5, "epochs_run": 3}, "stopped"), 2: None,  # told as stopped: of fewer epochs
                    3: ({"val_mse": 4.0, "epochs_run": 3}, "stopped")}


def test_objective_problem():
    assert objective_problem({"val_mse": 1.0}, "val_mse") is None
    assert objective_problem({"loss": 1.0}, "val_mse", stopped=True) is None
    assert objective_problem({"acc": 0.5}, "accuracy") == "returned no accuracy, the objective (it returned: acc)"


@pytest.mark.slow
def test_function_and_command_trials_through_hpt_run_agree_with_hpt_report(tmp_path):
    module = tmp_path / "diverge.py"
    module.write_text("def train(params, ctx):\n"
                      "    return {'val_mse': float(params['v']), 'loss': 1.0}\n")
    spec = write_spec(tmp_path, name="div", architecture="diverge:train", parameters={"v": ["nan", "inf", "2.5"]})
    out = tmp_path / "out"
    proc = subprocess.run([HPT, "run", str(spec), "-o", str(out), "-j", "1"], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "failed  " in proc.stderr and "objective val_mse is nan (the trial diverged?)" in proc.stderr
    assert "objective val_mse is inf (the trial diverged?)" in proc.stderr
    assert "done: 1 ok, 2 failed, 0 timed out" in proc.stderr and "best val_mse 2.5" in proc.stderr
    (folder,) = out.iterdir()
    report = subprocess.run([HPT, "report", str(folder)], env=subprocess_env(), capture_output=True, text=True,
                            timeout=120)
    assert report.returncode == 0, report.stderr
    assert "(1 ok, 2 failed)" in report.stdout, report.stdout

    command = [sys.executable, "-c", "import json, sys; print(json.dumps({{sys.argv[1]: float(sys.argv[2])}}))",
               "{name}", "{v}"]
    spec = write_spec(tmp_path, name="cmd", command=command, parameters={"name": ["val_mse", "acc"], "v": [1.5]})
    proc = subprocess.run([HPT, "run", str(spec), "-o", str(out), "-j", "1"], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "returned no val_mse, the objective (it returned: acc)" in proc.stderr
    assert "done: 1 ok, 1 failed" in proc.stderr
