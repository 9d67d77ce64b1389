"""Machine-readable records of a run, for pipelines: JSON-lines events, JUnit XML, a summary.

Each is a RunObserver; the CLI attaches the ones asked for (--events, --junit, --summary-json).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree as ET

from hpt_cli.runner.events import RunInfo, RunObserver, TrialOutcome
from hpt_cli.sanitize import xml_safe
from hpt_cli.search.trial import Trial
from hpt_cli.storage.results import LEAD, PASSED, STATUSES, TAIL


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
    passes, with a note in its output). Written at the end of the run.

    It covers the whole run folder, as summary.json's counts do: on a resumed run the trials
    finished by earlier attempts (their rows in results.csv, `RunInfo.earlier`) come first, so
    their failures still show. Every attribute and text is made XML-safe (`xml_safe`): a trial's
    error may hold terminal colour codes or other control characters."""

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

    def _all_cases(self) -> list[_Case]:
        earlier = self.info.earlier if self.info else []
        columns = self.info.param_columns if self.info else {}
        return ([_Case.from_row(row, columns, earlier=True) for row in earlier if row.get("status") in STATUSES]
                + [_Case.from_outcome(o) for o in self.cases])

    def render(self, summary: dict[str, Any]) -> str:
        name = summary.get("name") or (self.info.run_id if self.info else "hpt")
        cases = self._all_cases()
        failures = sum(c.status not in PASSED for c in cases)
        total_time = f"{summary.get('wall_time_s', 0):.3f}"
        stamp = datetime.fromtimestamp(self.started, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        suites = ET.Element("testsuites", name=f"hpt {name}", tests=str(len(cases)),
                            failures=str(failures), errors="0", time=total_time)
        suite = ET.SubElement(suites, "testsuite", name=summary.get("run_id", name), tests=str(len(cases)),
                              failures=str(failures), errors="0", skipped="0", time=total_time,
                              timestamp=stamp, hostname=socket.gethostname())
        props = ET.SubElement(suite, "properties")
        for key in ("run_id", "status", "exit_code"):
            ET.SubElement(props, "property", name=key, value=str(summary.get(key, "")))
        for c in cases:
            case = ET.SubElement(suite, "testcase", classname=c.classname, name=c.name, time=f"{c.duration_s:.3f}")
            if c.status not in PASSED:
                failure = ET.SubElement(case, "failure", message=c.error or c.status, type=c.status)
                failure.text = f"{c.error or c.status}\nlog: {c.artifact_dir}/log.txt"
                if c.earlier:
                    failure.text += "\n(finished by an earlier attempt of this run)"
            else:
                out = ET.SubElement(case, "system-out")
                out.text = json.dumps(c.metrics, sort_keys=True)
                if c.status == "stopped":
                    epoch = c.metrics.get("epochs_run")
                    out.text = (f"stopped early by the scheduler at epoch {epoch:g}\n" if epoch is not None
                                else "stopped early by the scheduler\n") + out.text
        for element in suites.iter():  # nothing XML 1.0 forbids, in any attribute or text
            element.attrib = {k: xml_safe(v) for k, v in element.attrib.items()}
            if element.text:
                element.text = xml_safe(element.text)
        ET.indent(suites)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


@dataclass
class _Case:
    """One testcase: a trial finished by this invocation, or a row of an earlier one."""

    classname: str
    name: str
    duration_s: float
    status: str
    error: str | None
    artifact_dir: str
    metrics: dict[str, Any]
    earlier: bool = False

    @classmethod
    def from_outcome(cls, o: TrialOutcome) -> _Case:
        t = o.trial
        return cls(f"hpt.{t.architecture}.{t.date_range}", _case_name(t.id, t.params), o.duration_s, o.status,
                   o.error, o.artifact_dir, o.metrics)

    @classmethod
    def from_row(cls, row: dict[str, str], param_columns: dict[str, str], earlier: bool = False) -> _Case:
        """A results.csv row; parameter cells are read back as JSON where they parse (numbers,
        booleans, lists), else kept as text, so the name is the one the trial had when it ran."""
        params = {name: _cell_value(row[col]) for name, col in param_columns.items() if row.get(col, "") != ""}
        known = set(LEAD) | set(TAIL) | set(param_columns.values())
        metrics: dict[str, Any] = {}
        for key, cell in row.items():
            if key not in known and key is not None and cell not in ("", None):
                try:
                    metrics[key] = float(cell)
                except ValueError:
                    metrics[key] = cell
        try:
            extra = json.loads(row.get("extra") or "{}")
        except ValueError:
            extra = {}
        if isinstance(extra, dict):  # metrics with no column; "param:<name>": a parameter with none
            metrics.update({k: v for k, v in extra.items() if not k.startswith("param:")})
            params.update({k[len("param:"):]: v for k, v in extra.items() if k.startswith("param:")})
        try:
            duration = float(row.get("duration_s") or 0)
        except ValueError:
            duration = 0.0
        return cls(f"hpt.{row.get('architecture', '')}.{row.get('start', '')}..{row.get('end', '')}",
                   _case_name(row.get("trial_id", ""), params), duration, row.get("status", ""),
                   row.get("error") or None, row.get("artifact_dir", ""), metrics, earlier)


def _case_name(trial_id: str, params: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items())
    return f"{trial_id} {shown}".strip()


def _cell_value(cell: str) -> Any:
    try:
        return json.loads(cell)
    except ValueError:
        return cell


class SummaryFile(RunObserver):
    """`--summary-json FILE`: the run's summary.json, also at a path the pipeline chose."""

    def __init__(self, path: str):
        self.path = path

    def run_finished(self, summary: dict[str, Any]) -> None:
        _write_atomic(self.path, json.dumps(summary, indent=2, default=str) + "\n")
