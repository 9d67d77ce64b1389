"""The exit code and summary speak for the whole run folder: a trial the executor dropped (a Dask
task lost beyond its resubmits) makes the run `incomplete`, exit 4, and a rerun with a smaller
budget than the folder's judges --max-failures against every row the folder holds."""

from __future__ import annotations

import json
import time

from hpt_cli.executors.base import Executor, JobResult
from hpt_cli.runner import metric_columns
from hpt_cli.runner.loop import Runner
from hpt_cli.runner.run_id import run_id
from hpt_cli.search import make_searcher
from hpt_cli.spec.parse import parse_spec
from hpt_cli.storage import open_store


class Scripted(Executor):
    """One slot; the n-th job (from 1) ends as `outcome(n)` says: ok, failed or cancelled."""

    def __init__(self, outcome):
        self.outcome, self.jobs, self.n = outcome, [], 0

    def start(self):
        pass

    def submit(self, job):
        self.jobs.append(job)

    def free_slots(self):
        return 1 - len(self.jobs)

    def wait(self, timeout=None):
        out = []
        for job in self.jobs:
            self.n += 1
            status = self.outcome(self.n)
            out.append(JobResult(job.key, status, {"val_mse": 1.0} if status == "ok" else None,
                                 None if status == "ok" else f"{status} by the script", None, "w0", 1,
                                 time.time(), time.time()))
        self.jobs = []
        return out

    def shutdown(self, cancel=True):
        return []


def spec_of(trials: int):
    return parse_spec(json.dumps({"name": "c", "architecture": "branin", "search": {"strategy": "random",
                                  "trials": trials, "seed": 1}, "date-range": [["2015-01-01", "2015-02-01"]],
                                  "parameters": {"x1": {"distribution": "uniform", "low": 0, "high": 1}, "x2": 2.0}}))


def run(tmp_path, spec, executor, **options):
    rid = run_id(spec)
    return Runner(spec, rid, make_searcher(spec), executor, open_store(str(tmp_path), rid), metric_columns(spec), 1,
                  **options).run()


def test_a_trial_the_executor_dropped_makes_the_run_incomplete_exit_4(tmp_path):
    result = run(tmp_path, spec_of(3), Scripted(lambda n: "cancelled" if n == 2 else "ok"))
    assert (result.exit_code, result.summary["status"]) == (4, "incomplete")
    assert result.summary["counts"]["ok"] == 2 and result.summary["counts"]["cancelled"] == 1
    again = run(tmp_path, spec_of(3), Scripted(lambda n: "ok"))  # the rerun runs the dropped one
    assert (again.exit_code, again.summary["status"], again.summary["counts"]["ok"]) == (0, "complete", 3)


def test_a_smaller_budget_judges_failures_against_every_row_of_the_folder(tmp_path):
    first = run(tmp_path, spec_of(20), Scripted(lambda n: "failed" if n <= 5 else "ok"), max_failures="30%")
    assert first.exit_code == 0  # 5 of 20 failed, 30% allowed
    again = run(tmp_path, spec_of(5), Scripted(lambda n: "ok"), max_failures="30%")
    assert again.exit_code == 0 and again.summary["total"] == 20  # nothing ran: the folder's 20 rows decide
