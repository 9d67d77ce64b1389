"""Job and trial functions for the placement tests, imported by workers as `tests.gpu_jobs`."""

from __future__ import annotations

import os
import time


def report_slot(payload: dict) -> dict:
    """What the slot's environment says, and when the job ran (to check that jobs overlapped)."""
    started = time.time()
    time.sleep(payload.get("sleep", 0.0))
    return {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "HPT_DEVICE": os.environ.get("HPT_DEVICE"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "pid": os.getpid(), "started": started, "ended": time.time()}


def oom_trial(params: dict, ctx) -> dict:
    """A trial that fails as torch does when a GPU has no memory left (torch must be installed)."""
    import torch

    message = ("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.1 GiB "
               "of which 1.2 GiB is free.\nSee documentation for Memory Management")
    if params.get("plain"):
        raise RuntimeError(message)
    raise torch.cuda.OutOfMemoryError(message)


def device_trial(params: dict, ctx) -> dict:
    """Reports the context's device as a metric-free fact: 1.0 when it is the CPU."""
    return {"on_cpu": float(ctx.device == "cpu")}
