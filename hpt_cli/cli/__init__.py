"""The `hpt` command: a thin click layer over the core (hpt_cli.spec, .search, .runner ...).

Every command builds core objects, calls them, and prints. Core errors (HptError) become one
line per problem on stderr and their exit code; tracebacks only with --debug (which keeps the
exit code: a script sees the same 2, 4 or 70 with or without it).
"""

from __future__ import annotations

import errno
import sys
import traceback
from pathlib import Path

import click

from hpt_cli import __version__
from hpt_cli.errors import ExitCode, HptError

GLOBAL_OPTIONS = ("--debug", "--version")  # the group's own: they go before the command


class HptCommand(click.Command):
    """A subcommand whose usage errors name its own help (`hpt run --help`), also those click
    raises without a context ("Option '--output' requires an argument"), and say where a global
    option given after it goes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            if exc.option_name in GLOBAL_OPTIONS:
                where = f"hpt --debug {ctx.info_name} ..." if exc.option_name == "--debug" else "hpt --version"
                raise click.UsageError(f"{exc.option_name} is hpt's own option and goes before the command: "
                                       f"{where}", ctx=ctx.parent) from None
            exc.ctx = exc.ctx or ctx
            raise
        except click.UsageError as exc:
            exc.ctx = exc.ctx or ctx
            raise


class HptGroup(click.Group):
    """Turns HptError into `error: ...` lines and the error's exit code, a usage error into one
    such line (exit 2), Ctrl-C into `interrupted` and exit 3, and anything else into one
    `error: internal error` line (exit 70)."""

    command_class = HptCommand

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:  # `hpt --bogus`: the group's own options
            _usage_line(exc, ctx)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HptError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()  # then the same line and exit code as without --debug
            for line in str(exc).splitlines() or [type(exc).__name__]:
                click.echo(f"error: {line}", err=True)
            ctx.exit(exc.exit_code)
        except (KeyboardInterrupt, click.Abort):  # Ctrl-C (click's own "Aborted!" would exit 1)
            if sys.stderr.isatty():
                click.echo(err=True)  # past the ^C the terminal shows
            click.echo("interrupted", err=True)
            ctx.exit(ExitCode.INTERRUPTED)
        except click.UsageError as exc:  # one line, as every other user error (click prints three)
            _usage_line(exc, ctx)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:  # a bug in hpt, not the user's fault: say so in one line
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            first = str(exc).splitlines()[0] if str(exc) else ""
            click.echo(
                f"error: internal error {type(exc).__name__}: {first} (rerun with --debug for the traceback)",
                err=True,
            )
            ctx.exit(ExitCode.INTERNAL)


def _usage_line(exc: click.UsageError, ctx: click.Context) -> None:
    if type(exc).__name__ == "NoArgsIsHelpError":  # `hpt` alone (click >= 8.2): the help, as click shows it
        raise exc
    where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
    click.echo(f"error: {exc.format_message()} (see {where} --help)", err=True)
    ctx.exit(exc.exit_code)


def why_unwritable(path: str | Path, exc: OSError, folder: bool = False) -> str:
    """Why `path` (a file, or a `folder`) could not be created or written, in words: a file in
    the way is named ("afile is a file, not a folder"), where the OSError would say "File
    exists" or "Not a directory"; else the OSError's own reason."""
    path = Path(path)
    if exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
        steps = [*reversed(path.parents), *([path] if folder else [])]
        for step in steps:
            if step.exists() and not step.is_dir():
                return f"{step} is a file, not a folder"
        if not folder and path.is_dir():
            return f"{path} is a folder, not a file"
    return exc.strerror or str(exc)


@click.group(cls=HptGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="hpt", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors (for bug reports).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """hpt: hyperparameter sweeps from a JSON spec.

    \b
    Check a spec, see its trials, then run them:
      hpt validate experiments/quickstart.json
      hpt expand experiments/quickstart.json --limit 5
      hpt run experiments/quickstart.json --output runs

    Exit codes: 0 ok, 1 trials failed, 2 bad spec or usage, 3 interrupted,
    4 storage failed: a bucket unreachable (results kept in the spool) or a full disk
    (finished rows kept; rerun to resume), 5 run folder locked by another run, 6 --max-time
    reached, 70 an internal error (rerun with --debug and report it).
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


from hpt_cli.cli import (  # noqa: E402,F401  (registers the commands)
    device_commands,
    mode_commands,
    report_command,
    run_command,
    spec_commands,
    storage_commands,
    worker_command,
)


def main() -> None:
    cli.main(prog_name="hpt")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
