"""Rows of one or more run folders (local or gs://, finished or still running), merged by
configuration.

Only whole lines of results.csv are read (a run in progress may have a torn last line). A
configuration is an architecture plus the values of the parameters that apply to it; its key is
`"<architecture> <JSON of its params>"`, so the same configuration in two runs (monthly sweeps)
is one configuration here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hpt_cli.errors import HptError
from hpt_cli.storage.gcs import is_gcs
from hpt_cli.storage.results import LEAD, TAIL, stale_summary
from hpt_cli.watch import open_source

NO_RUN = "no results.csv (is this a run folder? `hpt run` prints its path)"


@dataclass(frozen=True)
class Row:
    """One finished trial, as the report needs it."""

    run: str  # the run's label (its folder name)
    trial_id: str
    status: str
    architecture: str
    params: dict[str, Any]  # the parameters that apply to this architecture, values parsed
    config: str  # configuration key: architecture + JSON of params
    date_range: str  # "start..end"
    repeat: int
    value: float  # the objective; nan when the row has none
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float
    artifact: str  # where its files are: the run folder joined with artifact_dir
    error: str


@dataclass
class Run:
    uri: str
    label: str
    metric: str
    mode: str
    parameters: list[str]
    cells: list[tuple[str, int]]  # the (date range, repeat) pairs the spec asks of every configuration
    summary: dict[str, Any] | None
    rows: list[Row] = field(default_factory=list)
    skipped_lines: int = 0  # lines with the wrong number of cells
    repeated_rows: int = 0  # whole rows of a trial id read before (kept: the first)


@dataclass
class Results:
    """The rows of every run given, with what they share."""

    runs: list[Run]
    metric: str
    mode: str
    rows: list[Row]
    labels: dict[str, str]  # configuration key -> short label (only the parameters that vary)
    ranges: list[str]  # every date range seen, in order
    notes: list[str] = field(default_factory=list)  # for the user: RUNs given twice, read once

    @property
    def ok(self) -> list[Row]:
        """Rows with an objective value."""
        return [r for r in self.rows if r.status == "ok" and math.isfinite(r.value)]

    @property
    def ranked(self) -> list[Row]:
        """Rows the ranking uses: ok ones and those stopped early by the scheduler (whose
        configurations rank after the complete ones; see rank_configs)."""
        return [r for r in self.rows if r.status in ("ok", "stopped") and math.isfinite(r.value)]


def load_results(uris: list[str]) -> Results:
    """Read every run at `uris` and merge them; raises HptError when they have no rows at all.
    Rows without a result (every trial failed) are fine: the report then shows the failures."""
    uris, notes = distinct_runs(uris)
    runs = [load_run(uri) for uri in uris]
    first = runs[0]
    for run in runs[1:]:
        if (run.metric, run.mode) != (first.metric, first.mode):
            raise HptError(f"{run.uri}: its objective is {run.metric} ({run.mode}) but {first.uri}'s is "
                           f"{first.metric} ({first.mode}); report runs with the same objective together")
    rows = [row for run in runs for row in run.rows]
    if not rows:
        where = ", ".join(r.uri for r in runs)
        raise HptError(f"{where}: no finished trials yet (results.csv has only its header); "
                       "report again once trials have finished")
    return Results(runs, first.metric, first.mode, rows, config_labels(rows),
                   sorted({r.date_range for r in rows}), notes)


def distinct_runs(uris: list[str]) -> tuple[list[str], list[str]]:
    """`uris` without those naming a run folder given before (the same folder, its results.csv,
    another spelling of its path), so no trial counts twice; and a note for each left out."""
    kept: dict[str, str] = {}  # the folder's identity -> the uri given first
    notes = []
    for uri in uris:
        key = _identity(uri)
        if key in kept:
            again = "is given twice" if uri == kept[key] else f"is the run folder {kept[key]} again"
            notes.append(f"{uri} {again}; its trials are counted once")
        else:
            kept[key] = uri
    return list(kept.values()), notes


def _identity(uri: str) -> str:
    folder = run_folder(uri)
    if is_gcs(folder):
        return folder
    return os.path.realpath(folder)


def run_folder(uri: str) -> str:
    """The run folder of a RUN argument, which may also be its results.csv."""
    uri = uri.rstrip("/") or uri
    if uri.endswith("/results.csv") or uri == "results.csv":
        uri = uri[: -len("results.csv")].rstrip("/") or "."
    return uri


def load_run(uri: str) -> Run:
    """One run folder; `uri` may also be its results.csv (the path `hpt run` prints)."""
    uri = run_folder(uri)
    source = open_source(uri)
    raw = _read(source, uri, "results.csv")
    if raw is None:
        raise HptError(f"{uri}: {NO_RUN}")
    spec = _json(source, uri, "spec.json")
    if spec is None:
        raise HptError(f"{uri}: no spec.json next to results.csv (`hpt run` writes it before the first trial)")
    summary = _json(source, uri, "summary.json")
    if summary is not None and stale_summary(summary, spec):
        summary = None  # an earlier attempt's: the run was started again and has not ended since
    objective = spec.get("objective") or {}
    metric = objective.get("metric", "val_mse")
    mode = objective.get("mode", "min")
    run = Run(uri, uri.rstrip("/").rsplit("/", 1)[-1], metric, mode, parameter_names(spec),
              expected_cells(spec), summary)
    text = raw[: raw.rfind(b"\n") + 1].decode("utf-8", errors="replace")  # whole lines only
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return run
    columns = param_columns(header, run.parameters)
    seen: set[str] = set()
    for cells in reader:
        if len(cells) != len(header):
            run.skipped_lines += 1
            continue
        row = _row(run, dict(zip(header, cells)), columns)
        if row.trial_id and row.trial_id in seen:  # hpt writes a trial once; a copy merged by hand may not
            run.repeated_rows += 1
            continue
        seen.add(row.trial_id)
        run.rows.append(row)
    return run


def parameter_names(spec: dict[str, Any]) -> list[str]:
    """Every parameter name of a resolved spec.json, shared or per architecture."""
    params = spec.get("parameters") or {}
    archs = spec.get("architecture")
    archs = archs if isinstance(archs, list) else [archs]
    per_arch = (len(archs) > 1 and isinstance(params, dict) and params
                and all(k in archs and isinstance(v, dict) and "distribution" not in v for k, v in params.items()))
    blocks = list(params.values()) if per_arch else [params]
    return list(dict.fromkeys(name for block in blocks if isinstance(block, dict) for name in block))


def expected_cells(spec: dict[str, Any]) -> list[tuple[str, int]]:
    ranges = spec.get("date-range", spec.get("date_ranges")) or []
    repeats = int((spec.get("search") or {}).get("repeats", 1) or 1)
    labels = [f"{r[0]}..{r[1]}" for r in ranges if isinstance(r, list) and len(r) == 2]
    return [(label, k) for label in labels for k in range(repeats)]


def param_columns(header: list[str], names: list[str]) -> dict[str, str]:
    """Parameter name -> its column (`param_<name>` where the name clashed with another column)."""
    out = {}
    for name in names:
        if f"param_{name}" in header:
            out[name] = f"param_{name}"
        elif name in header and name not in LEAD and name not in TAIL:
            out[name] = name
    return out


def config_key(architecture: str, params: dict[str, Any]) -> str:
    return f"{architecture} {canonical(params)}"


def canonical(value: Any) -> str:
    """JSON of a value with numbers compared by value: 1.0 is written 1, so a spec that wrote 1
    and one that wrote 1.0 (monthly sweeps) give one configuration."""
    return json.dumps(_numbers(value), sort_keys=True)


def _numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    return value


def config_labels(rows: list[Row]) -> dict[str, str]:
    """Short labels: the architecture and the parameters that vary within it (a parameter that
    some of its configurations lack varies too). Labels are unique: where two would read the
    same (values equal to 6 digits), their numbers are written in full."""
    first: dict[str, Row] = {}
    for r in rows:
        first.setdefault(r.config, r)
    seen: dict[str, dict[str, set[str]]] = {}
    configs: dict[str, int] = defaultdict(int)
    for r in first.values():
        configs[r.architecture] += 1
        per = seen.setdefault(r.architecture, {})
        for name, value in r.params.items():
            per.setdefault(name, set()).add(canonical(value))
    counts = {arch: {n: sum(1 for r in first.values() if r.architecture == arch and n in r.params) for n in per}
              for arch, per in seen.items()}

    def label(r: Row, precise: bool) -> str:
        varying = [(n, v) for n, v in r.params.items()
                   if len(seen[r.architecture][n]) > 1 or counts[r.architecture][n] < configs[r.architecture]]
        text = " ".join(f"{n}={value_text(v, precise)}" for n, v in varying)
        return f"{r.architecture} {text}".strip()

    labels = {config: label(r, False) for config, r in first.items()}
    clashes = _clashes(labels)
    for config in clashes:
        labels[config] = label(first[config], True)
    for config in _clashes(labels):  # still the same: the key tells them apart
        labels[config] = config
    return labels


def _clashes(labels: dict[str, str]) -> list[str]:
    by_label: dict[str, list[str]] = defaultdict(list)
    for config, text in labels.items():
        by_label[text].append(config)
    return [c for configs in by_label.values() if len(configs) > 1 for c in configs]


def value_text(value: Any, precise: bool = False) -> str:
    """A parameter value as a label shows it: floats to 6 significant digits (`precise`: all)."""
    if isinstance(value, float):
        return repr(value) if precise else f"{value:g}"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _row(run: Run, cells: dict[str, str], columns: dict[str, str]) -> Row:
    arch = cells.get("architecture", "")
    params = {name: _value(cells[col]) for name, col in columns.items() if cells.get(col, "") != ""}
    artifact = cells.get("artifact_dir", "")
    if artifact and not (artifact.startswith("/") or "://" in artifact):
        artifact = f"{run.uri}/{artifact}"
    return Row(
        run=run.label,
        trial_id=cells.get("trial_id", ""),
        status=cells.get("status", ""),
        architecture=arch,
        params=params,
        config=config_key(arch, params),
        date_range=f"{cells.get('start', '')}..{cells.get('end', '')}",
        repeat=_int(cells.get("repeat", "")),
        value=_float(cells.get(run.metric, "")),
        started_at=_time(cells.get("started_at", "")),
        ended_at=_time(cells.get("ended_at", "")),
        duration_s=_float(cells.get("duration_s", "")),
        artifact=artifact,
        error=cells.get("error", ""),
    )


def _read(source, uri: str, name: str) -> bytes | None:
    """The file's bytes, None when it is not there; a path that cannot be read is one line (exit 2)."""
    try:
        return source.read(name)
    except NotADirectoryError:
        raise HptError(f"{uri}: not a folder (give the run folder `hpt run` printed, or its results.csv)") from None
    except OSError as exc:
        raise HptError(f"{uri}/{name}: cannot be read ({exc.strerror or exc})") from None


def _json(source, uri: str, name: str) -> dict[str, Any] | None:
    raw = _read(source, uri, name)
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HptError(f"{uri}/{name}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise HptError(f"{uri}/{name}: not a JSON object (it holds a {type(doc).__name__})")
    return doc


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
