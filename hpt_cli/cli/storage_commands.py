"""`hpt sync` and `hpt watch`: finish an upload that failed, follow a run from anywhere."""

from __future__ import annotations

import sys

import click

from hpt_cli.cli import cli


@cli.command()
@click.argument("spool", type=click.Path(exists=True, file_okay=False))
@click.option("--timeout", type=click.FloatRange(min=0), default=300, show_default=True,
              help="Seconds to keep retrying before giving up (exit 4).")
@click.option("--verify", is_flag=True,
              help="Also check that the bucket still holds every file uploaded before (name, size, "
                   "CRC32C) and upload again what it lacks: one listing, and a read of every file.")
def sync(spool: str, timeout: float, verify: bool) -> None:
    """Upload a spool that a run left behind when gs:// was unreachable (it exited 4).

    Rows are appended exactly once, also when this is run twice or the network fails midway.
    Exits 4 if the bucket stays unreachable (run it again), 2 if the bucket's results.csv is no
    longer the spool's (rows written from elsewhere): the error says which copy holds what.

    A run that exited 4 for the upload has its summary.json say so (upload_pending); once the
    bucket holds everything, sync puts the run's own status and exit code back (with synced_at),
    so `hpt watch` and pipelines see how the run went.

    A plain sync trusts the spool's record of what went up; --verify checks it against the bucket
    (after objects were deleted there by hand, or by a lifecycle rule).

    \b
    Example:
      hpt sync ~/.cache/hpt/spool/my-bucket/sweeps/quickstart-6df2cb09
      hpt sync --verify ~/.cache/hpt/spool/my-bucket/sweeps/quickstart-6df2cb09
    """
    from hpt_cli.storage.remote import sync_spool

    location, size, restored = sync_spool(spool, timeout, verify=verify)
    if verify:
        from hpt_cli.words import first_of

        shown = first_of(restored)
        click.echo(f"verified: the bucket lacked {len(restored)} of the files uploaded before"
                   + (f" ({shown}); uploaded again" if restored else ""))
    trust = "" if verify else " went up (by the spool's record of its uploads: --verify checks the bucket itself)"
    click.echo(f"synced: {location} holds results.csv ({size} bytes) and every file of {spool}{trust}")


@cli.command()
@click.argument("uri")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between reads.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None,
              help="Give up after this many seconds without the run finishing (exit 2).")
def watch(uri: str, interval: float, timeout: float | None) -> None:
    """Follow a running run's results.csv (a local run folder or gs://...): progress, best so
    far, failures as they come. Exits when summary.json appears, with the run's exit code; 2 if
    URI holds no run (at once) or --timeout passes first, 3 on Ctrl-C.

    \b
    Example:
      hpt watch gs://my-bucket/sweeps/quickstart-6df2cb09
      hpt watch runs/quickstart-6df2cb09 --interval 5
    """
    from hpt_cli.watch import watch as follow

    code = follow(uri, lambda line: click.echo(line), interval=interval, timeout=timeout)
    sys.exit(code)
