"""results.csv: columns fixed before the first row, one whole line per finished trial.

Parameter values that are not scalars (lists, objects) are written as JSON text; metrics with no
column of their own, and metrics that are strings or bools (a metric column holds numbers only),
go into the JSON `extra` column, never dropped.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

# Columns every results.csv has, in order; parameter and metric columns go between them.
LEAD = ("trial_id", "status", "architecture", "start", "end", "repeat", "seed")
TAIL = ("attempts", "started_at", "ended_at", "duration_s", "worker", "device", "artifact_dir",
        "error", "extra")
STATUSES = ("ok", "stopped", "failed", "timeout")  # stopped: early, by the spec's scheduler
PASSED = ("ok", "stopped")  # statuses that are not failures


def stale_summary(summary: dict[str, Any], spec_doc: dict[str, Any] | None) -> bool:
    """Whether a run folder's summary.json was left by an earlier attempt of a run started again
    (it ended before the current attempt wrote its spec.json): then it does not speak for the
    folder, which may hold rows that attempt never counted (e.g. it was killed)."""
    created = (spec_doc or {}).get("hpt", {}).get("created_at")
    ended = summary.get("ended_at")
    return bool(isinstance(created, str) and isinstance(ended, str) and ended < created)


def param_column(name: str, taken: Iterable[str]) -> str:
    """A parameter's column: its own name, or `param_<name>` where that is taken."""
    return f"param_{name}" if name in set(taken) else name


class Columns:
    """The header of a run's results.csv and how a row maps onto it."""

    def __init__(self, params: Sequence[str], metrics: Sequence[str]):
        fixed = set(LEAD) | set(TAIL)
        self.metrics = [m for m in dict.fromkeys(metrics) if m not in fixed]
        taken = fixed | set(self.metrics)
        self.params = {p: param_column(p, taken) for p in params}
        self.header = [*LEAD, *self.params.values(), *self.metrics, *TAIL]

    @classmethod
    def from_header(cls, header: Sequence[str], params: Sequence[str]) -> Columns:
        """Columns of an existing file (resume): keep its header as it is."""
        cols = cls(params, [])
        known = set(LEAD) | set(TAIL) | set(cols.params.values())
        cols.metrics = [h for h in header if h not in known]
        cols.header = list(header)
        return cols

    def row(self, fields: dict[str, Any], params: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
        values = {k: _text(v) for k, v in fields.items()}
        for name, value in params.items():
            column = self.params.get(name)
            if column is None:  # a parameter not in the header (should not happen): keep it
                values.setdefault("_extra", {})[f"param:{name}"] = value
            else:
                values[column] = _text(value)
        extra = dict(values.pop("_extra", {}))
        for name, value in metrics.items():
            if name in self.metrics and not isinstance(value, (str, bool)):  # a metric column holds numbers
                values[name] = _number(value)
            else:
                extra[name] = value
        if extra:
            values["extra"] = json.dumps(extra, sort_keys=True, default=str)
        return [values.get(h, "") for h in self.header]

    def line(self, *args, **kwargs) -> str:
        return csv_line(self.row(*args, **kwargs))


def csv_line(cells: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, sort_keys=True)


def read_rows(text: str) -> list[dict[str, str]]:
    """Rows of results.csv text; a last line without its newline is not a whole row: skipped."""
    if not text:
        return []
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))
