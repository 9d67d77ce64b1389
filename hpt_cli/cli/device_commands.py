"""`hpt devices`: the GPUs and CPUs a run would use, and how trials would be placed on them.

The option types of --gpus-per-trial, --cpus-per-trial and --gpu-memory-per-trial live here and
are shared with `hpt run`, which takes the same options to override the spec's `resources`.
"""

from __future__ import annotations

import click

from hpt_cli.cli import cli


class GpusPerTrial(click.ParamType):
    """--gpus-per-trial: 0, a share 1/k (0.5, "1/8"), 1, a whole number of GPUs, or auto."""

    name = "N|auto"

    def get_metavar(self, param, ctx=None):
        return self.name

    def convert(self, value, param, ctx):
        from hpt_cli.devices import check_gpus_per_trial

        if isinstance(value, float) or value == "auto":
            return value
        try:
            return check_gpus_per_trial(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class GpuMemory(click.ParamType):
    """--gpu-memory-per-trial: a memory size of at least 1 MiB (6GiB, 512MiB; MiB when bare)."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        from hpt_cli.devices import parse_trial_memory

        if isinstance(value, int):
            return value
        try:
            return parse_trial_memory(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


GPUS_PER_TRIAL = GpusPerTrial()
CPUS_PER_TRIAL = click.IntRange(min=1)
GPU_MEMORY = GpuMemory()


@cli.command()
@click.option("--gpus", default=None, metavar="LIST",
              help="GPUs to use, as nvidia-smi numbers them: '0,2', 'all' (default) or 'none'.")
@click.option("--gpus-per-trial", type=GPUS_PER_TRIAL, default=None,
              help="Also show the slots a run would get: 0, 0.5, 1/8, 1, 2 ... or 'auto'.")
@click.option("--cpus-per-trial", type=CPUS_PER_TRIAL, default=1, show_default=True,
              help="CPU threads per trial (with --gpus-per-trial).")
@click.option("--gpu-memory-per-trial", type=GPU_MEMORY, default=None,
              help="GPU memory a trial needs, e.g. 6GiB; without --gpus-per-trial (or with 0): 'auto' "
                   "by that memory.")
@click.option("-j", "--workers", type=click.IntRange(min=1), default=None,
              help="At most this many slots (with --gpus-per-trial).")
def devices(gpus: str | None, gpus_per_trial: float | str | None, cpus_per_trial: int,
            gpu_memory_per_trial: int | None, workers: int | None) -> None:
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
    from hpt_cli.devices import describe, detect, notes, plan, select
    from hpt_cli.devices.placement import capped

    inventory = select(detect(), gpus)
    if inventory.gpus:
        rows = [[str(g.index), g.name, f"{g.memory_total_mib} MiB", f"{g.memory_free_mib} MiB",
                 "-" if g.utilization_pct is None else f"{g.utilization_pct}%"] for g in inventory.gpus]
        click.echo(render(["GPU", "name", "memory", "free", "use"], rows))
    else:
        click.echo(f"no GPU found ({inventory.note or 'nvidia-smi'})")
    click.echo(f"CPUs: {inventory.cpus}")
    if gpus_per_trial is not None or gpu_memory_per_trial is not None:
        mem = gpu_memory_per_trial
        if gpus is not None and gpus.strip().lower() == "none":  # as `hpt run --gpus none`
            gpus_per_trial, mem = 0.0, None
        try:  # gpu_memory_per_trial with gpus_per_trial 0 (or none given) is "auto", as in a run
            slots = plan(inventory, gpus_per_trial or 0.0, cpus_per_trial, workers, mem)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        cap = capped(slots, inventory, gpus_per_trial or 0.0, cpus_per_trial, workers, mem)
        for line in describe(slots, cap) + notes(slots, inventory.cpus):
            click.echo(line)
