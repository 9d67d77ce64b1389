"""GPU and thread hygiene inside a worker, between trials. Used by hpt_cli.trialrun.

Nothing here imports torch: each function acts only when the trial's code already imported it
(`"torch" in sys.modules`), so a numpy or command trial never pays for torch, and a worker that
never touched CUDA never creates a CUDA context.

Environment read (set per slot by hpt_cli.devices.placement):
    HPT_DEVICE            "cuda:0" or "cpu": the trial's ctx.device
    HPT_TORCH_THREADS     torch.set_num_threads(n), once per worker
    HPT_GPU_MEMORY_MIB    torch.cuda.set_per_process_memory_fraction(MiB / total) on cuda:0, once
                          per worker: a trial that wants more gets an out-of-memory error instead of
                          taking its neighbours' share of the GPU. `whole_gpu` lifts it for one trial
                          (the retry alone on a GPU after an out-of-memory error next to others)
    HPT_FAKE_GPUS         placement ran on a fake inventory: trials run on the CPU
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["configure_torch", "is_oom_error", "oom_message", "release_gpu_memory", "trial_device", "whole_gpu"]

_configured: set[str] = set()  # what configure_torch has done in this process
_OOM_LEAD = "GPU out of memory on "  # how oom_message starts; is_oom_error looks for it
_OOM_RAISED_AS = "RuntimeError: "  # hpt_cli.trialrun raises oom_message as a RuntimeError
_MEMORY_VAR = "HPT_GPU_MEMORY_MIB"


def trial_device(default: str = "cpu") -> str:
    """The device a trial should use: HPT_DEVICE, else `default`; "cpu" on a fake inventory."""
    device = os.environ.get("HPT_DEVICE") or default
    if device.startswith("cuda") and os.environ.get("HPT_FAKE_GPUS", "").strip():
        return "cpu"  # HPT_FAKE_GPUS: the placement is pretend, the trial runs here on the CPU
    return device


def _torch() -> Any | None:
    return sys.modules.get("torch")


def configure_torch() -> None:
    """Thread count and GPU memory cap from the slot's environment, once per worker, if torch
    is imported. Never raises: a cap that cannot be set leaves the trial to run without it."""
    torch = _torch()
    if torch is None:
        return
    threads = os.environ.get("HPT_TORCH_THREADS", "").strip()
    if "threads" not in _configured and threads:
        _configured.add("threads")
        try:
            torch.set_num_threads(max(1, int(threads)))
        except (ValueError, RuntimeError):
            pass
    if "memory" not in _configured and os.environ.get(_MEMORY_VAR, "").strip():
        _apply_memory_cap(torch)


def _apply_memory_cap(torch: Any) -> None:
    """The one place a GPU memory cap is applied: HPT_GPU_MEMORY_MIB as a fraction of cuda:0's
    memory, the whole GPU where it is unset (a lifted cap). On a CUDA device only; never raises."""
    if not trial_device().startswith("cuda"):
        return
    _configured.add("memory")
    limit = os.environ.get(_MEMORY_VAR, "").strip()
    try:
        if torch.cuda.is_available():
            total = torch.cuda.get_device_properties(0).total_memory
            fraction = min(1.0, int(limit) * 1024 * 1024 / total) if limit else 1.0
            torch.cuda.set_per_process_memory_fraction(fraction, 0)
    except (ValueError, RuntimeError, AttributeError):
        pass


@contextmanager
def whole_gpu(lift: bool = True) -> Iterator[None]:
    """For one trial (`lift`): no GPU memory cap. HPT_GPU_MEMORY_MIB is out of os.environ while
    it runs (and torch's cap is the whole GPU where this worker had already applied its own); after
    it, the worker's cap is back, in os.environ and in torch where torch is imported by then, so
    the next trial on this worker gets its share again. The retry alone on a GPU after an
    out-of-memory error next to other trials (hpt_cli.runner.loop) runs so."""
    saved = os.environ.pop(_MEMORY_VAR, None) if lift else None
    if saved is None:  # nothing to lift
        yield
        return
    torch = _torch()
    if torch is not None and "memory" in _configured:
        _apply_memory_cap(torch)
    try:
        yield
    finally:
        os.environ[_MEMORY_VAR] = saved
        torch = _torch()
        if torch is not None:
            _apply_memory_cap(torch)


def release_gpu_memory() -> None:
    """After a trial: collect garbage and hand the CUDA caching allocator's free blocks back, so
    the next trial on this slot (or a neighbour on the same GPU) finds them. Touches CUDA only
    where this process already initialised it."""
    torch = _torch()
    if torch is None:
        return
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            gc.collect()
            torch.cuda.empty_cache()
    except (RuntimeError, AttributeError):
        pass


def oom_message(exc: BaseException, device: str) -> str | None:
    """The one-line error for a CUDA out-of-memory exception, None for any other exception."""
    torch = _torch()
    if torch is None:
        return None
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    text = str(exc)
    is_oom = (isinstance(oom_type, type) and isinstance(exc, oom_type)) or (
        isinstance(exc, RuntimeError) and "CUDA out of memory" in text)
    if not is_oom:
        return None
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    where = f"{device} [GPU {visible}]" if device.startswith("cuda") and visible else device
    return (f"{_OOM_LEAD}{where} ({first}): lower the batch or model size, or give each "
            f"trial more of a GPU (resources.gpus_per_trial)")


def is_oom_error(error: str | None) -> bool:
    """Whether a job's one-line error (`JobResult.error`) is the out-of-memory error a trial ends
    with (`oom_message`, raised by hpt_cli.trialrun): what the runner retries with fewer
    neighbours (hpt_cli.runner.loop). The one place that reads that error's text."""
    return (error or "").startswith(_OOM_RAISED_AS + _OOM_LEAD)
