"""What a worker does before it says it is ready (LocalExecutor's `warmup`): load the run's data,
so that its first trial's time, and its `trial.timeout`, are the trial's own."""

from __future__ import annotations

from hpt_cli.spec.model import DataSpec


def load_data(data: DataSpec) -> None:
    from hpt_cli.datasets import load_dataset

    load_dataset(data)  # cached for the worker's life: every trial's ctx.data reads from it
