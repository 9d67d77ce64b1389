"""Devices: what this machine has (inventory) and where each trial runs (placement).

    inventory = detect()                      # nvidia-smi + CUDA_VISIBLE_DEVICES (+ HPT_FAKE_GPUS)
    inventory = select(inventory, "0,2")      # the --gpus option
    slots = plan(inventory, 0.5, cpus_per_trial=2)
    lines = describe(slots) + notes(slots, inventory.cpus)
    LocalExecutor(len(slots), slot_env=[s.env for s in slots])

`plan_run` does the three steps for a run. See docs/gpu.md. Nothing here imports torch.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping

from hpt_cli.devices.inventory import (
    FAKE_ENV,
    Gpu,
    Inventory,
    detect,
    fake,
    parse_mib,
    select,
    usable_cpus,
)
from hpt_cli.devices.placement import (
    AUTO_TRIAL_MIB,
    THREAD_VARS,
    Slot,
    check_gpus_per_trial,
    describe,
    notes,
    parse_gpus_per_trial,
    parse_trial_memory,
    plan,
)

__all__ = ["AUTO_TRIAL_MIB", "FAKE_ENV", "THREAD_VARS", "Gpu", "Inventory", "Slot", "check_gpus_per_trial",
           "describe", "detect", "fake", "notes", "parse_gpus_per_trial", "parse_mib", "parse_trial_memory", "plan",
           "plan_run", "select", "usable_cpus"]


def plan_run(
    gpus_per_trial: float | str = 0.0,
    cpus_per_trial: int = 1,
    workers: int | None = None,
    gpu_memory_per_trial: int | str | None = None,
    gpus: str | None = None,
    env: Mapping[str, str] = os.environ,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> tuple[Inventory, list[Slot]]:
    """The inventory and slots of a run: detect (only when a GPU is asked for), apply `--gpus`
    (`gpus`), plan. `gpu_memory_per_trial` is MiB or text ("6GiB"); with gpus_per_trial 0 it
    means "auto" by that memory. `--gpus none` runs every trial on a CPU slot whatever the
    resources say. Raises HptError (one line) or ValueError."""
    g = parse_gpus_per_trial(gpus_per_trial)
    mem = None if gpu_memory_per_trial is None else parse_trial_memory(gpu_memory_per_trial)
    cpu_only = gpus is not None and gpus.strip().lower() == "none"
    if (g == 0 and mem is None) or cpu_only:
        if gpus is not None and not cpu_only:
            select(detect(env, run), gpus)  # a typo in --gpus is an error even when no GPU is used
        inventory = Inventory(gpus=(), cpus=usable_cpus(), note="--gpus none" if cpu_only else "")
        return inventory, plan(inventory, 0, cpus_per_trial, workers)
    inventory = select(detect(env, run), gpus)
    return inventory, plan(inventory, g, cpus_per_trial, workers, mem)
