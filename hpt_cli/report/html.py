"""A self-contained report.html: the text report's tables as HTML and the plots as embedded PNGs."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

from hpt_cli.report import plots
from hpt_cli.report.build import Report
from hpt_cli.report.load import Results
from hpt_cli.report.text import (
    best_section,
    comparison_section,
    effects_section,
    failure_section,
    headline,
    ranking_section,
    trajectory_section,
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2em 0.7em; text-align: left; }
th { background: #f4f4f4; } p.note { color: #555; } img { max-width: 100%; }
"""


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(title: str, lines: list[str], plot: str = "") -> str:
    """A text section (its first line is the caption) with its tables already rendered as HTML."""
    if not lines:
        return ""
    parts = [f"<h2>{html.escape(title)}</h2>", f"<p>{html.escape(lines[0])}</p>"]
    for line in lines[1:]:
        parts.append(line if line.startswith("<table>") else f"<p>{html.escape(line)}</p>")
    return "\n".join(parts) + plot


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'\n<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def render_html(report: Report, results: Results) -> str:
    have_plots = plots.available()
    img = {}
    if have_plots:
        if report.ranked:
            img["trajectory"] = _img(plots.trajectory_png(report), "incumbent trajectory")
        img["parameters"] = _img(plots.parameters_png(report, results), "objective against each parameter")
        img["ranges"] = _img(plots.ranges_png(report), "top configurations per date range")
    missing = "" if have_plots else (
        '<p class="note">No plots: matplotlib is not installed (pip install "hpt-cli[plots]").</p>')
    body = [
        f"<h1>hpt report: {html.escape(', '.join(r.label for r in report.runs))}</h1>",
        f"<p>{html.escape(headline(report))}</p>", missing,
        _section("Which configuration wins?", ranking_section(report, table), img.get("ranges", "")),
        _section("Is the best really better?", comparison_section(report, table)),
        _section("What does each parameter do?", effects_section(report, table), img.get("parameters", "")),
        _section("Is the search still improving?", trajectory_section(report, table), img.get("trajectory", "")),
        _section("What failed?", failure_section(report, table)),
        _section("Where is the best model?", best_section(report)),
        "".join(f'<p class="note">note: {html.escape(n)}</p>' for n in report.notes),
    ]
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hpt report</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(b for b in body if b) + "\n</body></html>\n")
