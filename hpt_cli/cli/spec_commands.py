"""`hpt validate`, `hpt expand`, `hpt schema`: check a spec before spending GPU hours."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date
from itertools import islice
from pathlib import Path

import click

from hpt_cli.cli import cli
from hpt_cli.cli.params import IsoDate
from hpt_cli.cli.table import render
from hpt_cli.command import as_text
from hpt_cli.search import configurations_by_architecture, expand
from hpt_cli.search.space import capped
from hpt_cli.spec import load_spec, parse_spec, schema
from hpt_cli.spec.model import Spec
from hpt_cli.spec.modes import for_running
from hpt_cli.words import plural

spec_argument = click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))


def today_option(func):
    return click.option(
        "--today",
        type=IsoDate(),
        default=None,
        help="The run day for rolling date ranges; default: today.",
    )(func)


def _day(value) -> date | None:
    return value  # IsoDate gives a date already (None: today)


def read_spec(spec_path: str, today) -> Spec:
    """Load SPEC (a file, or - for standard input) for the run day `today` (None: today)."""
    if spec_path == "-":
        text = sys.stdin.read()
        return parse_spec(text, source="<stdin>", today=_day(today), default_name="stdin")
    return load_spec(spec_path, today=_day(today))


def located(exc, spec_path: str):
    """A SpecError of the preflight (JSON paths only) with SPEC's name and each problem's line,
    as `hpt validate` and `hpt run` show them; the same error when it has its source already."""
    from hpt_cli.errors import SpecError

    if exc.source is not None:
        return exc
    if spec_path == "-":
        return SpecError(exc.problems, "<stdin>")
    from hpt_cli.architectures.check import with_lines

    try:
        text = Path(spec_path).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return SpecError(exc.problems, spec_path)
    return SpecError(with_lines(exc.problems, text), spec_path)


def cap_note(space) -> str:
    """What to say when random or adaptive search asked for more configurations than its space has."""
    cap = capped(space)
    if cap is None:
        return ""
    asked, has, initial = cap
    besides = " besides the initial ones" if initial else ""
    strategy = getattr(space, "space", space).strategy
    runs = "random search runs all of them" if strategy == "random" else f"{strategy} runs {has} at most"
    return f"search.trials is {asked} but the space has {plural(has, 'configuration')}{besides}: {runs}"


def describe_ranges(spec: Spec) -> str:
    text = plural(len(spec.date_ranges), "date range")
    if spec.rolling is not None:
        r = spec.rolling
        text += f" (rolling: {r.count} x {r.length}, step {r.step}, ending {spec.date_ranges[-1].end})"
    return text


@cli.command()
@spec_argument
@today_option
@click.option("--strict", is_flag=True,
              help="What `hpt run` would refuse on this machine (a note without it) is an error, exit 2: for CI.")
def validate(spec_path: str, today, strict: bool) -> None:
    """Check a spec: prints `ok` and its size, or every problem with its JSON path (exit 2), a
    parameter, value or objective a built-in architecture does not take included. A note on
    stderr says what `hpt run` would still refuse on this machine (an architecture that does not
    resolve, data that is missing or does not cover the dates); with --strict that is an error.

    \b
    Example:
      hpt validate experiments/seed-lstm-attention.json
      ok: experiments/seed-lstm-attention.json: 27 trials (lstm-attention: 27 configurations x 1 date range x 1 repeat)
      hpt validate --strict experiments/quickstart.json     # in CI
    """
    spec = for_running(read_spec(spec_path, today))
    trials = expand(spec)
    from hpt_cli.errors import HptError, SpecError
    from hpt_cli.runner import preflight

    notes: list[str] = []
    try:  # what `hpt run` checks before starting: what this machine lacks is a note, but a
        notes = [f"note: {n}" for n in preflight(spec)]  # parameter or objective the spec's
    except SpecError as exc:  # architectures do not have is a spec error
        raise located(exc, spec_path) from None
    except HptError as exc:
        if strict:  # the same line `hpt run` would stop with, exit 2
            raise HptError(f"{exc} (hpt validate --strict: `hpt run` would stop here)") from None
        notes = [f"note: on this machine `hpt run` would stop here: {exc}"]
    archs = ", ".join(spec.architectures)
    click.echo(
        f"ok: {spec_path}: {plural(len(trials), 'trial')} ({archs}: {plural(len(trials.space), 'configuration')} x "
        f"{describe_ranges(spec)} x {plural(spec.search.repeats, 'repeat')})"
        + (f"; {cap_note(trials.space)}" if cap_note(trials.space) else "")
    )
    for note in notes:
        click.echo(note, err=True)


@cli.command(name="expand")
@spec_argument
@click.option("--limit", "-n", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many trials to list (in dispatch order).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="table for people; json or csv for scripts.")
@click.option("--quick", is_flag=True, help="Show the quick version that `hpt run --quick` runs.")
@today_option
def expand_command(spec_path: str, limit: int, fmt: str, quick: bool, today) -> None:
    """Show what a spec expands to: trial counts per architecture and date range, the resolved
    date ranges, and the first trials in the order they will run. Nothing runs and the data is
    not read (it stays light for huge grids): `hpt validate` checks the data.

    \b
    Example:
      hpt expand experiments/seed-lstm-attention.json --limit 3
      hpt expand experiments/rolling.json --today 2016-08-15 --format json
      hpt expand experiments/quickstart.json --quick --limit 0
    """
    spec = for_running(read_spec(spec_path, today), quick)
    trials = expand(spec)
    per_arch = configurations_by_architecture(trials.space)
    first = list(islice(iter(trials), limit))
    params = spec.parameter_names
    if fmt == "json":
        click.echo(json.dumps(_as_json(spec, trials, per_arch, first), indent=2))
    elif fmt == "csv":
        click.echo(_as_csv(first, params), nl=False)
    else:
        click.echo(_as_table(spec, spec_path, trials, per_arch, first, params))


def _counts(spec: Spec, per_arch: dict[str, int]) -> list[tuple[str, str, int]]:
    return [
        (arch, str(r), configs * spec.search.repeats)
        for arch, configs in per_arch.items()
        for r in spec.date_ranges
    ]


def _as_table(spec, spec_path, trials, per_arch, first, params) -> str:
    s = spec.search
    order = f", {s.order} order" if s.strategy == "grid" else ""
    quick = f", {spec.trial.epochs} epochs" if spec.mode == "quick" else ""
    n = len(s.initial)
    initial = f", {n} initial configuration{'s' if n > 1 else ''} first" if n else ""
    out = [
        f"spec     {spec_path} ({spec.name})" + (" in quick mode" if spec.mode == "quick" else ""),
        f"search   {s.strategy}{order}, seed {s.seed}{quick}{initial}",
        f"trials   {'up to ' if s.strategy not in ('grid', 'random') else ''}{len(trials)} = "
        f"{plural(len(trials.space), 'configuration')} x {describe_ranges(spec)}"
        f" x {plural(s.repeats, 'repeat')}",
        *([f"note     {cap_note(trials.space)}"] if cap_note(trials.space) else []),
        "",
        render(["architecture", "date range", "trials"], _counts(spec, per_arch)),
        "",
    ]
    if first:
        if s.strategy not in ("grid", "random"):
            out.append(f"{s.strategy} chooses each configuration from the results before it; the trials below "
                       "are a random sample of the space, not the ones it will run:")
        else:
            out.append(f"first {len(first)} of {plural(len(trials), 'trial')}:")
        header = ["#", "trial", "architecture", "date range", *(["repeat"] if s.repeats > 1 else []), *params]
        rows = [
            [t.index, t.id, t.architecture, str(t.date_range), *([t.repeat] if s.repeats > 1 else []),
             *(t.params.get(p, "") for p in params)]
            for t in first
        ]
        out.append(render(header, rows))
    return "\n".join(out)


def _as_json(spec, trials, per_arch, first) -> dict:
    return {
        "name": spec.name,
        "mode": spec.mode,
        "epochs": spec.trial.epochs,
        "total": len(trials),
        "configurations": len(trials.space),
        "note": cap_note(trials.space) or None,
        "date_ranges": [r.to_json() for r in spec.date_ranges],
        "counts": [{"architecture": a, "date_range": r, "trials": n} for a, r, n in _counts(spec, per_arch)],
        "trials": [
            {"index": t.index, "id": t.id, "architecture": t.architecture,
             "date_range": t.date_range.to_json(), "repeat": t.repeat, "seed": t.seed, "params": t.params}
            for t in first
        ],
    }


def _as_csv(first, params) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "trial_id", "architecture", "start", "end", "repeat", "seed", *params])
    for t in first:
        values = [as_text(t.params[p]) if p in t.params else "" for p in params]
        writer.writerow([t.index, t.id, t.architecture, *t.date_range.to_json(), t.repeat, t.seed, *values])
    return buf.getvalue()


@cli.command(name="schema")
def schema_command() -> None:
    """Print the JSON Schema of the spec (for editors and CI checks).

    \b
    Example:
      hpt schema > hpt-spec.schema.json
    """
    click.echo(json.dumps(schema(), indent=2))
