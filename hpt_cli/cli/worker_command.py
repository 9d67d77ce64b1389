"""`hpt worker SCHEDULER`: a Dask worker with this machine's GPUs and CPUs as resources."""

from __future__ import annotations

import os

import click

from hpt_cli.cli import cli


@cli.command()
@click.argument("scheduler")
@click.option("--name", default=None,
              help="The worker's name (default: <host name>-<pid>, so several workers can share a box).")
@click.option("--print", "print_only", is_flag=True, help="Print the dask worker command instead of running it.")
def worker(scheduler: str, name: str | None, print_only: bool) -> None:
    """Start a Dask worker for `hpt run --executor dask`, with the resources hpt's trials ask for:
    CPU=<usable CPUs> and GPU=<GPUs found>, one thread per CPU, CUDA_VISIBLE_DEVICES set (with
    CUDA_DEVICE_ORDER=PCI_BUS_ID, so its indices are nvidia-smi's).

    \b
    Example (on each machine of the cluster, after `dask scheduler` runs on one of them):
      hpt worker tcp://10.0.0.5:8786
    """
    from hpt_cli.executors.dask import worker_argv

    argv, env = worker_argv(scheduler, name=name)
    if "CUDA_VISIBLE_DEVICES" in env:  # its nvidia-smi indices mean the same GPUs to CUDA (docs/gpu.md)
        env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", **env}
    if print_only:
        prefix = " ".join(f"{k}={v}" for k, v in env.items())
        click.echo(f"{prefix} {' '.join(argv)}".strip())
        return
    os.execvpe(argv[0], argv, {**os.environ, **env})
