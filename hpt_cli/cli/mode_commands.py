"""`hpt architectures` (what auto mode tunes) and `hpt calibrate` (is quick mode trustworthy)."""

from __future__ import annotations

import json
import sys
import threading

import click

from hpt_cli.cli import cli
from hpt_cli.cli.spec_commands import read_spec, spec_argument, today_option
from hpt_cli.cli.table import render


@cli.command(name="architectures")
@click.option("--space", is_flag=True,
              help="Also show each default search space; * marks the learning-rate parameters (auto stage 1).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people; json for scripts (always with the spaces).")
def architectures_command(space: bool, fmt: str) -> None:
    """List the registered architectures: name, metrics, description; with --space, the
    parameters each reads (where it declares them) and the default search space `hpt run --auto
    ARCH` tunes (stage 1: the learning-rate parameters marked *; stage 2: the rest, learning rate
    fixed at stage 1's best).

    \b
    Example:
      hpt architectures
      hpt architectures --space
    """
    from hpt_cli.architectures import ArchitectureError, get, names

    found, missing = [], []
    for name in names():
        try:
            found.append(get(name))
        except ArchitectureError as exc:
            missing.append((name, str(exc)))
    if fmt == "json":
        doc = {a.name: {"description": a.description, "metrics": list(a.metrics), "lr_params": list(a.lr_params),
                        "parameters": None if a.parameters is None else sorted(a.parameters),
                        "default_space": a.default_space} for a in found}
        doc.update({name: {"unavailable": why} for name, why in missing})
        click.echo(json.dumps(doc, indent=2))
        return
    if not space:
        rows = [[a.name, ", ".join(a.metrics), a.description] for a in found]
        rows += [[name, "-", f"unavailable: {why}"] for name, why in missing]
        click.echo(render(["architecture", "metrics", "description"], rows))
        return
    blocks = []
    for a in found:
        lines = [f"{a.name}: {a.description}", f"  metrics: {', '.join(a.metrics) or '-'}"]
        if a.parameters is not None:  # every name a spec may give it (the default space's and the rest)
            lines.append(f"  parameters: {', '.join(sorted(a.parameters)) or '-'}")
        if not a.default_space:
            lines.append("  no default space (auto mode cannot tune it)")
        else:
            marked = "* = learning-rate parameter, tuned first" if a.lr_params else "no learning-rate parameters: auto tunes all at once"
            lines.append(f"  default space ({marked}):")
            width = max(len(n) for n in a.default_space)
            for n, domain in a.default_space.items():
                lines.append(f"  {'*' if n in a.lr_params else ' '} {n.ljust(width)}  {json.dumps(domain)}")
        blocks.append("\n".join(lines))
    blocks += [f"{name}: unavailable: {why}" for name, why in missing]
    click.echo("\n\n".join(blocks))


@cli.command(name="calibrate")
@spec_argument
@click.option("--sample", "-n", type=click.IntRange(min=3), default=8, show_default=True,
              help="How many distinct configurations to run in both modes.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seeds the sample of configurations and the bootstrap.")
@click.option("--output", "-o", metavar="DIR", default=None,
              help="Where the two run folders go (overrides the spec's \"output\"; default ./runs).")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=None,
              help="Trials at once; default: usable CPUs / resources.cpus_per_trial.")
@click.option("--ci", "method", type=click.Choice(["bootstrap", "fisher"]), default="bootstrap",
              show_default=True, help="The 95% interval: bootstrap over configurations, or Fisher's z.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines from the two runs.")
@today_option
def calibrate_command(spec_path: str, sample: int, seed: int, output: str | None, workers: int | None,
                      method: str, quiet: bool, today) -> None:
    """Run a sample of SPEC's configurations in quick mode and in full mode and print the
    Spearman rank correlation of their mean objectives with its 95% interval: does quick mode
    rank configurations as full mode would?

    The sample is SPEC as a random search over --sample distinct configurations (grid lists
    become uniform choices; with several architectures each configuration draws one). Both runs
    go to <output>/<name>-calibrate-quick-* and -full-*; running again resumes them.

    \b
    Example:
      hpt calibrate experiments/quickstart.json
      hpt calibrate experiments/quickstart.json --sample 12 --seed 1 --ci fisher
    """
    from hpt_cli.calibrate import calibrate
    from hpt_cli.cli.progress import Progress
    from hpt_cli.cli.run_command import StopOnSignal
    from hpt_cli.runner import RunOptions, run_spec

    spec = read_spec(spec_path, today)
    options = RunOptions(output=output, workers=workers)  # failed trials: left out of the ranking
    stop = threading.Event()
    say = lambda text: click.echo(text, err=True)  # noqa: E731

    def run(one):
        observers = [Progress(stream=sys.stderr, quiet=quiet)]
        return run_spec(one, options, observers=observers, stop=stop, say=say)

    with StopOnSignal(stop, lambda text: say(f"\n{text}")):
        result = calibrate(spec, sample, seed, method, run=run, stop=stop)
    q, f = result.quick_spec, result.full_spec
    if result.exit_code:
        say(f"calibration stopped (exit {result.exit_code}); run it again to resume both runs")
        sys.exit(result.exit_code)
    obj = f"{spec.objective.metric} ({spec.objective.mode})"
    epochs = lambda s: f"{s.trial.epochs} epochs" if s.trial.epochs else "the spec's epochs"  # noqa: E731
    click.echo(f"calibrate {spec_path}: {result.n} configurations, seed {seed}, objective {obj}")
    click.echo(f"quick  {_ranges(q)}, {epochs(q)}: {result.quick_seconds:.1f} s  {result.quick_uri}")
    click.echo(f"full   {_ranges(f)}, {epochs(f)}: {result.full_seconds:.1f} s  {result.full_uri}")
    click.echo("")
    rows = [[r.label, r.quick, r.full, _rank(r.quick_rank), _rank(r.full_rank)] for r in result.rows]
    click.echo(render(["configuration", "quick", "full", "quick rank", "full rank"], rows))
    for note in result.left_out:
        click.echo(f"left out: {note}")
    click.echo("")
    click.echo(result.line())
    for note in result.notes():
        click.echo(f"note: {note}")


def _ranges(spec) -> str:
    n = len(spec.date_ranges)
    if n == 1:
        return f"1 date range ({spec.date_ranges[0]})"
    return f"{n} date ranges ({spec.date_ranges[0].start}..{spec.date_ranges[-1].end})"


def _rank(rank: float) -> str:
    return f"{rank:g}"
