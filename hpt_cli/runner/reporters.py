"""Machine-readable records of a run, for pipelines: JSON-lines events, JUnit XML, a summary.

Each is a RunObserver; the CLI attaches the ones asked for (--events, --junit, --summary-json).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree as ET

from hpt_cli.runner.events import RunInfo, RunObserver, TrialOutcome
from hpt_cli.search.trial import Trial
from hpt_cli.storage.results import PASSED


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _write_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class EventLog(RunObserver):
    """One JSON object per line, flushed as it happens: `--events FILE` or `--events -` (stdout)."""

    def __init__(self, target: str, clock=_now):
        self.clock = clock
        self._own = target != "-"
        if self._own:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self.stream: IO[str] = open(target, "a", encoding="utf-8") if self._own else sys.stdout

    def _emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": self.clock(), **fields}
        self.stream.write(json.dumps(record, default=str, allow_nan=True) + "\n")
        self.stream.flush()

    def run_started(self, info: RunInfo) -> None:
        self._emit("run_started", run_id=info.run_id, uri=info.uri, total=info.total, skipped=info.skipped,
                   workers=info.workers, spec=info.resolved_spec)

    def trial_started(self, trial: Trial, attempt: int, running: int) -> None:
        self._emit("trial_started", trial_id=trial.id, attempt=attempt, architecture=trial.architecture,
                   params=trial.params, date_range=trial.date_range.to_json(), repeat=trial.repeat)

    def trial_finished(self, o: TrialOutcome) -> None:
        event = "trial_finished" if o.status in PASSED else "trial_failed"
        self._emit(event, trial_id=o.trial.id, status=o.status, metrics=o.metrics, error=o.error,
                   duration_s=o.duration_s, attempts=o.attempts, worker=o.worker, artifact_dir=o.artifact_dir)

    def run_finished(self, summary: dict[str, Any]) -> None:
        self._emit("run_finished", summary=summary)
        if self._own:
            self.stream.close()


class JUnitReport(RunObserver):
    """JUnit XML for Jenkins' test view: one testsuite per run, one testcase per finished trial
    (a failed or timed-out trial is a <failure> with its error; one stopped early by the scheduler
    passes, with a note in its output). Written at the end of the run."""

    def __init__(self, path: str):
        self.path = path
        self.cases: list[TrialOutcome] = []
        self.info: RunInfo | None = None
        self.started = time.time()

    def run_started(self, info: RunInfo) -> None:
        self.info = info
        self.started = time.time()

    def trial_finished(self, o: TrialOutcome) -> None:
        self.cases.append(o)

    def run_finished(self, summary: dict[str, Any]) -> None:
        _write_atomic(self.path, self.render(summary))

    def render(self, summary: dict[str, Any]) -> str:
        name = summary.get("name") or (self.info.run_id if self.info else "hpt")
        failures = sum(o.status not in PASSED for o in self.cases)
        total_time = f"{summary.get('wall_time_s', 0):.3f}"
        stamp = datetime.fromtimestamp(self.started, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        suites = ET.Element("testsuites", name=f"hpt {name}", tests=str(len(self.cases)),
                            failures=str(failures), errors="0", time=total_time)
        suite = ET.SubElement(suites, "testsuite", name=summary.get("run_id", name), tests=str(len(self.cases)),
                              failures=str(failures), errors="0", skipped="0", time=total_time,
                              timestamp=stamp, hostname=socket.gethostname())
        props = ET.SubElement(suite, "properties")
        for key in ("run_id", "status", "exit_code"):
            ET.SubElement(props, "property", name=key, value=str(summary.get(key, "")))
        for o in self.cases:
            t = o.trial
            params = ", ".join(f"{k}={json.dumps(v)}" for k, v in t.params.items())
            case = ET.SubElement(suite, "testcase", classname=f"hpt.{t.architecture}.{t.date_range}",
                                 name=f"{t.id} {params}".strip(), time=f"{o.duration_s:.3f}")
            if o.status not in PASSED:
                failure = ET.SubElement(case, "failure", message=o.error or o.status, type=o.status)
                failure.text = f"{o.error or o.status}\nlog: {o.artifact_dir}/log.txt"
            else:
                out = ET.SubElement(case, "system-out")
                out.text = json.dumps(o.metrics, sort_keys=True)
                if o.status == "stopped":
                    epoch = o.metrics.get("epochs_run")
                    out.text = (f"stopped early by the scheduler at epoch {epoch:g}\n" if epoch is not None
                                else "stopped early by the scheduler\n") + out.text
        ET.indent(suites)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


class SummaryFile(RunObserver):
    """`--summary-json FILE`: the run's summary.json, also at a path the pipeline chose."""

    def __init__(self, path: str):
        self.path = path

    def run_finished(self, summary: dict[str, Any]) -> None:
        _write_atomic(self.path, json.dumps(summary, indent=2, default=str) + "\n")
