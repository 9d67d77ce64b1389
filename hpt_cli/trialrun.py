"""One trial, inside a worker process: `run_trial(payload) -> {metric: float | str | bool}`.

Workers serve many trials, so the architecture and the data are resolved once per process
(hpt_cli.architectures.get and hpt_cli.datasets.load_dataset cache). Exceptions propagate: the
executor records them. The executor has already sent stdout/stderr to the trial's log.

The trial's device is the slot's HPT_DEVICE (see hpt_cli.devices). Where the trial's code has
imported torch, the worker sets torch's thread count and GPU memory cap once (a payload's
`whole_gpu` lifts the cap for that trial only), returns cached GPU memory after every trial, and
turns a CUDA out-of-memory error into one clear line (the original traceback goes to the trial's
log). torch is never imported here.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpt_cli.architectures import COMMAND, get
from hpt_cli.context import TrialContext, TrialData, TrialStopped, metric_value
from hpt_cli.dates import DateRange
from hpt_cli.devices import worker as hygiene
from hpt_cli.spec.model import DataSpec

__all__ = ["STOPPED_KEY", "TrialPayload", "check_metrics", "metric_value", "run_trial"]

# Reserved metric a stopped trial returns (the epoch it reached); the runner takes it out of the
# row and writes status "stopped" instead.
STOPPED_KEY = "hpt_stopped_at_epoch"


@dataclass(frozen=True)
class TrialPayload:
    """Everything a worker needs for one trial; plain values only, so it pickles anywhere."""

    trial_id: str
    architecture: str
    params: dict[str, Any] = field(hash=False)
    date_range: tuple[str, str]  # ISO days, half-open
    seed: int
    epochs: int | None
    data: DataSpec | None  # None: the trial gets no frames (ctx.data is None)
    artifact_dir: str
    device: str = "cpu"
    command: tuple[str, ...] | None = None
    timeout: float | None = None  # seconds; enforced here for command trials
    # early stopping across trials (hpt_cli.search.schedulers.SchedulerSettings as a dict): type,
    # metric, mode, grace, reduction, folder (the run's rung files), group, config
    scheduler: dict[str, Any] | None = field(default=None, hash=False)
    # True: no GPU memory cap for this trial (its worker's HPT_GPU_MEMORY_MIB is lifted, then put
    # back after it): the retry alone on a GPU after an out-of-memory error next to other trials
    whole_gpu: bool = False


def run_trial(payload: TrialPayload) -> dict[str, float | str | bool]:
    with hygiene.whole_gpu(payload.whole_gpu):  # for this trial only: the next one gets the worker's cap
        return _run(payload)


def _run(payload: TrialPayload) -> dict[str, float | str | bool]:
    artifact_dir = Path(payload.artifact_dir)
    artifact_dir.mkdir(parents=True, exist_ok=True)
    if payload.command is not None or payload.architecture == COMMAND:
        from hpt_cli.command import run_command

        return check_metrics(run_command(payload))
    architecture = get(payload.architecture)
    date_range = DateRange.from_json(payload.date_range)
    data = None
    if payload.data is not None:
        spec = payload.data

        def load():  # on first access of ctx.data.train / .validation
            from hpt_cli.datasets import load_dataset

            return load_dataset(spec).split(date_range, spec.validation)

        data = TrialData(target=spec.target, date_column=spec.date_column, loader=load)
    device = hygiene.trial_device(payload.device)
    ctx = TrialContext(
        trial_id=payload.trial_id, params=dict(payload.params), date_range=date_range, seed=payload.seed,
        device=device, epochs=payload.epochs, artifact_dir=artifact_dir, data=data,
    )
    if payload.scheduler is not None:
        from hpt_cli.search.schedulers import Scheduler, SchedulerSettings

        ctx.scheduler = Scheduler(SchedulerSettings.from_dict(payload.scheduler), payload.trial_id,
                                  payload.epochs)
    hygiene.configure_torch()  # if the architecture's module imported torch
    hygiene.release_gpu_memory()  # what a failed trial before this one still held
    oom = None
    try:
        raw = architecture.train(dict(payload.params), ctx)
    except TrialStopped as stop:  # the last report's numbers, the epoch reached, and the marker
        raw = {**ctx.last_metrics, "epochs_run": stop.epoch, STOPPED_KEY: stop.epoch}
    except Exception as exc:
        oom = hygiene.oom_message(exc, device)
        if oom is None:
            raise
        traceback.print_exc(file=sys.stderr)  # the full story, into the trial's log
    finally:
        if "torch" in sys.modules:
            hygiene.configure_torch()  # torch imported inside train: set for the next trial
            hygiene.release_gpu_memory()
    if oom is not None:  # raised out here, so the OOM's frames (and their tensors) are gone
        raise RuntimeError(oom)
    return check_metrics(raw)


def check_metrics(raw: Any) -> dict[str, float | str | bool]:
    """{name: value} from what a trial returned, under string keys: numbers as floats, strings
    and bools as they are (see hpt_cli.context.metric_value). Anything else raises TypeError naming the key."""
    if not isinstance(raw, dict):
        raise TypeError(f"a trial must return a dict of metric name -> number, got {type(raw).__name__}")
    out: dict[str, float | str | bool] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise TypeError(f"metric names must be strings, got {key!r} ({type(key).__name__})")
        out[key] = metric_value(key, value)
    return out
