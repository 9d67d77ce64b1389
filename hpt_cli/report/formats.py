"""Machine-readable forms of the report: JSON (everything) and CSV (the ranking table)."""

from __future__ import annotations

import csv
import io
import json

from hpt_cli.report.build import Report

CSV_HEADER = ["rank", "architecture", "params", "label", "n", "mean", "std", "ci_low", "ci_high",
              "wins_every_range"]


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


def render_csv(report: Report) -> str:
    """One row per configuration of the ranking; then its rank on each date range
    (`rank <start>..<end>`, empty where it has no result there)."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(CSV_HEADER + [f"rank {r}" for r in report.ranges])
    for c in report.ranking:
        out.writerow([c.rank, c.architecture, json.dumps(c.params, sort_keys=True), c.label, c.n,
                      repr(c.mean), _opt(c.std), _opt(c.ci_low), _opt(c.ci_high),
                      "true" if c.wins_every_range else "false"]
                     + [c.range_ranks.get(r, "") for r in report.ranges])
    return buf.getvalue()


def _opt(value: float | None) -> str:
    return "" if value is None else repr(value)
