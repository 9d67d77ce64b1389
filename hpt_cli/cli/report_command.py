"""`hpt report`: rank a run's configurations, test the winner, show what each parameter does."""

from __future__ import annotations

from pathlib import Path

import click

from hpt_cli.cli import cli, why_unwritable

FILES = {"table": "report.txt", "csv": "report.csv", "json": "report.json", "html": "report.html"}


@cli.command()
@click.argument("runs", nargs=-1, required=True, metavar="RUN [RUN...]")
@click.option("--format", "fmt", type=click.Choice(list(FILES)), default="table", show_default=True,
              help="table for people, csv (the ranking), json (everything), html (report.html with plots).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Write the report into this folder (html: default the current folder; "
                   "other formats: default stdout).")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="Configurations listed and compared with the best (0: all).")
def report(runs: tuple[str, ...], fmt: str, out: str | None, top: int) -> None:
    """Which configuration wins, on every date range, and is it real?

    Reads results.csv and spec.json of each RUN (a run folder or gs://bucket/prefix/run-id;
    a run still going is read as far as it has got). Several RUNs are merged by configuration,
    e.g. to compare monthly sweeps. See docs/report.md.

    Exit 0 with a ranking; 1 when no configuration has a result (every trial failed: the report
    shows the failures, and nothing is ranked); 2 when a RUN cannot be read or has no finished trial.

    \b
    Examples:
      hpt report runs/quickstart-6df2cb09
      hpt report gs://my-bucket/sweeps/lstm-2025-01 gs://my-bucket/sweeps/lstm-2025-02 --top 5
      hpt report runs/quickstart-6df2cb09 --format html --out reports
    """
    from hpt_cli.report import analyse, load_results

    results = load_results(list(runs))
    for note in results.notes:
        click.echo(f"note: {note}", err=True)
    doc = analyse(results, top)
    if fmt == "table":
        from hpt_cli.cli.table import render
        from hpt_cli.report.text import render_text

        text = render_text(doc, render)
    elif fmt == "csv":
        from hpt_cli.report.formats import render_csv

        text = render_csv(doc)
    elif fmt == "json":
        from hpt_cli.report.formats import render_json

        text = render_json(doc)
    else:
        from hpt_cli.report.html import render_html

        text = render_html(doc, results)
        out = out or "."
    if out is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"report: {_write(Path(out), FILES[fmt], text)}")
    if not doc.ranked:  # the report is whole, but every trial failed: exit as `hpt run` did, not 2
        from hpt_cli.errors import ExitCode

        click.get_current_context().exit(ExitCode.TRIALS_FAILED)


def _write(folder: Path, name: str, text: str) -> Path:
    """Write the report file into `folder` (made if need be); one line if that cannot be done."""
    from hpt_cli.errors import HptError

    path = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise HptError(f"{path}: cannot write the report ({why_unwritable(folder, exc, folder=True)}); "
                       "give --out a folder you can write") from None
    return path
