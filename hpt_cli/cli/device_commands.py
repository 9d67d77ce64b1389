"""`hpt devices`: the GPUs and CPUs a run would use, and how trials would be placed on them."""

from __future__ import annotations

import click

from hpt_cli.cli import cli


@cli.command()
@click.option("--gpus", default=None, metavar="LIST",
              help="GPUs to use, as nvidia-smi numbers them: '0,2', 'all' (default) or 'none'.")
@click.option("--gpus-per-trial", default=None, metavar="N",
              help="Also show the slots a run would get: 0, 0.5, 1/8, 1, 2 ... or 'auto'.")
@click.option("--cpus-per-trial", type=click.IntRange(min=1), default=1, show_default=True,
              help="CPU threads per trial (with --gpus-per-trial).")
@click.option("--gpu-memory-per-trial", default=None, metavar="SIZE",
              help="GPU memory a trial needs, e.g. 6GiB (with --gpus-per-trial).")
@click.option("-j", "--workers", type=click.IntRange(min=1), default=None,
              help="At most this many slots (with --gpus-per-trial).")
def devices(gpus: str | None, gpus_per_trial: str | None, cpus_per_trial: int,
            gpu_memory_per_trial: str | None, workers: int | None) -> None:
    """List the GPUs (nvidia-smi, limited by CUDA_VISIBLE_DEVICES and --gpus) and the usable CPUs.

    HPT_FAKE_GPUS (e.g. 4x80GiB) stands in for nvidia-smi, to try placements without a GPU.

    \b
    Examples:
      hpt devices
      hpt devices --gpus 0,2
      hpt devices --gpus-per-trial 0.25 --cpus-per-trial 2
      HPT_FAKE_GPUS=4x80GiB hpt devices --gpus-per-trial auto --gpu-memory-per-trial 6GiB
    """
    from hpt_cli.cli.table import render
    from hpt_cli.devices import describe, detect, parse_mib, plan, select

    inventory = select(detect(), gpus)
    if inventory.gpus:
        rows = [[str(g.index), g.name, f"{g.memory_total_mib} MiB", f"{g.memory_free_mib} MiB",
                 "-" if g.utilization_pct is None else f"{g.utilization_pct}%"] for g in inventory.gpus]
        click.echo(render(["GPU", "name", "memory", "free", "use"], rows))
    else:
        click.echo(f"no GPU found ({inventory.note or 'nvidia-smi'})")
    click.echo(f"CPUs: {inventory.cpus}")
    if gpus_per_trial is not None:
        try:
            mem = None if gpu_memory_per_trial is None else parse_mib(gpu_memory_per_trial)
            if gpus is not None and gpus.strip().lower() == "none":  # as `hpt run --gpus none`
                gpus_per_trial, mem = "0", None
            slots = plan(inventory, gpus_per_trial, cpus_per_trial, workers, mem)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        for line in describe(slots):
            click.echo(line)
