"""Placement: an inventory and a spec's resources -> the slots of a run, each with its environment.

`plan()` is pure: it reads no environment and starts nothing. A slot is one worker process of
the executor (one trial at a time); its `env` is set in that worker before the interpreter
starts, so CUDA_VISIBLE_DEVICES and the thread limits hold before torch or numpy is imported.

    gpus_per_trial 0        CPU slots: `workers`, or usable CPUs // cpus_per_trial
    gpus_per_trial 1/k      k slots on every GPU, each seeing only that GPU (0.5, 0.25, 1/8 ...),
                            each capped at min(total, free) // k MiB (HPT_GPU_MEMORY_MIB)
    gpus_per_trial 1        one slot per GPU
    gpus_per_trial n > 1    one slot per disjoint group of n GPUs (#GPUs // n)
    "auto"                  per GPU: free MiB // per-trial MiB (gpu_memory_per_trial, or
                            AUTO_TRIAL_MIB), so memory other processes hold is left alone;
                            at most usable CPUs // cpus_per_trial slots unless `workers`
    gpu_memory_per_trial    with 1/k or 1: a GPU gets min(k, free // memory) slots; with n > 1:
                            a GPU with less free memory than that is left out; with 0 (or
                            no gpus_per_trial): "auto" by that memory

`workers` caps the total; `capped()` says why slots are fewer than the GPUs have room for. `notes()` says where the slots' CPU threads outnumber the usable CPUs. Slots go round-robin over the GPUs (w0 on gpu0, w1 on gpu1, ...), so
a cap, or a run with fewer trials than slots, spreads over every GPU rather than filling one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from hpt_cli.devices.inventory import Gpu, Inventory, parse_mib
from hpt_cli.errors import HptError

__all__ = ["AUTO_TRIAL_MIB", "THREAD_VARS", "Slot", "capped", "check_gpus_per_trial", "describe", "notes",
           "parse_gpus_per_trial", "parse_trial_memory", "plan"]

AUTO_TRIAL_MIB = 2048  # what "auto" admits per trial when gpu_memory_per_trial is not given
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
_FRACTION_TOLERANCE = 0.02  # 0.33 passes for 1/3, 0.3 does not


@dataclass(frozen=True)
class Slot:
    """One worker slot: the GPUs its trials see and the environment its worker starts with.

    name: "w0".. (the executor's slot name); gpu_indices: nvidia-smi indices, () on CPU;
    device: what a trial should use ("cuda:0", the first GPU it sees, or "cpu");
    label: for progress lines and the results' device column ("gpu0", "gpu0,1", "cpu");
    share: the fraction of each of its GPUs it may use (1/k; 1.0 for whole GPUs; 0.0 on CPU);
    memory_mib: the GPU memory a trial may allocate (HPT_GPU_MEMORY_MIB): min(total, free) // k for
        1/k of a GPU, gpu_memory_per_trial where given; None = no limit (whole GPUs, "auto" without it).
    admitted_mib: "auto" only: the free GPU memory each trial was admitted by; None otherwise.
    """

    name: str
    gpu_indices: tuple[int, ...]
    device: str
    env: dict[str, str] = field(hash=False)
    label: str
    share: float = 0.0
    memory_mib: int | None = None
    admitted_mib: int | None = None


def parse_gpus_per_trial(value: float | str) -> float | str:
    """"auto", or a number >= 0 (also given as text: "0.5", "1/8"). Raises ValueError."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        try:
            value = float(Fraction(text))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"gpus_per_trial: expected a number such as 0.5 or 1/8, or 'auto', got {value!r}"
                             ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"gpus_per_trial: expected a number >= 0 or 'auto', got {value!r}")
    return float(value)


def check_gpus_per_trial(value: float | str) -> float | str:
    """parse_gpus_per_trial, and a value a spec may hold: a share 1/k, or a whole number of GPUs.
    Raises ValueError (the option types of `hpt run` and `hpt devices`)."""
    g = parse_gpus_per_trial(value)
    if isinstance(g, float) and 0 < g < 1:
        per_gpu(g)
    elif isinstance(g, float) and g > 1 and not g.is_integer():
        raise ValueError(f"expected a fraction of one GPU (0.25), 1, or a whole number of GPUs, got {g:g}")
    return g


def parse_trial_memory(value: int | str) -> int:
    """gpu_memory_per_trial in MiB ("6GiB", 6144): at least 1 MiB. Raises ValueError."""
    mib = parse_mib(value)
    if mib < 1:
        raise ValueError(f"expected a GPU memory size of at least 1MiB, such as 6GiB, got {value!r}")
    return mib


def per_gpu(fraction: float) -> int:
    """k for a fraction 1/k of a GPU; ValueError when 1/fraction is not (nearly) a whole number."""
    k = round(1 / fraction)
    if k < 2 or abs(1 / fraction - k) > _FRACTION_TOLERANCE * k:
        raise ValueError(f"gpus_per_trial {fraction:g}: a share of a GPU must be 1/k for a whole k "
                         f"(0.5, 0.25, 0.125, ...); {fraction:g} is 1/{1 / fraction:.3g}")
    return k


def plan(
    inventory: Inventory,
    gpus_per_trial: float | str,
    cpus_per_trial: int = 1,
    workers: int | None = None,
    gpu_memory_per_trial_mib: int | None = None,
) -> list[Slot]:
    """The run's slots, in the order the executor names them (w0, w1, ...).

    Raises ValueError for values no spec may hold (a fraction that is not 1/k, 1.5 GPUs,
    cpus_per_trial < 1) and HptError (one line, for the user) when this machine cannot place
    the trials (a GPU asked for and none found, fewer GPUs than one trial needs, no GPU with
    enough free memory).
    """
    g = parse_gpus_per_trial(gpus_per_trial)
    if isinstance(cpus_per_trial, bool) or not isinstance(cpus_per_trial, int) or cpus_per_trial < 1:
        raise ValueError(f"cpus_per_trial must be an integer >= 1, got {cpus_per_trial!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    mem = gpu_memory_per_trial_mib
    if mem is not None and (isinstance(mem, bool) or not isinstance(mem, int) or mem < 1):
        raise ValueError(f"gpu_memory_per_trial must be a positive number of MiB, got {mem!r}")

    implied = g == 0 and mem is not None  # memory alone: admission by free memory
    if implied:
        g = "auto"
    if g == 0:
        count = workers or max(1, inventory.cpus // cpus_per_trial)
        return [_cpu_slot(i, cpus_per_trial) for i in range(count)]

    if g == "auto":
        workers = workers or max(1, inventory.cpus // cpus_per_trial)
    order = _gpu_room(inventory, g, mem, implied)
    if workers is not None:
        order = order[:workers]
    return [_gpu_slot(i, gpus, share, limit, cpus_per_trial, admitted)
            for i, (gpus, share, limit, admitted) in enumerate(order)]


def _gpu_room(inventory: Inventory, g: float | str, mem: int | None,
              implied: bool = False) -> list[tuple[tuple[Gpu, ...], float, int | None, int | None]]:
    """Every GPU slot the GPUs have room for, before a cap (-j, or "auto"'s usable CPUs), in slot
    order: (its GPUs, share, memory cap, admitted MiB) each. Raises as `plan` does."""
    asked = "auto" if g == "auto" else f"{g:g}"
    if not inventory.gpus:
        why = f" ({inventory.note})" if inventory.note else " (nvidia-smi)"
        setting = (f"resources.gpu_memory_per_trial is {mem} MiB (a GPU's free memory decides the packing)"
                   if implied else f"resources.gpus_per_trial is {asked}")
        raise HptError(f"{setting} but no GPU was found{why}; use --gpus none to run on CPUs")

    groups: list[list[tuple[tuple[Gpu, ...], float, int | None, int | None]]]  # per GPU (group): its slots
    if g == "auto":
        need = mem or AUTO_TRIAL_MIB
        groups = [[((gpu,), need / max(gpu.memory_total_mib, 1), mem, need)] * (_free(gpu) // need)
                  for gpu in inventory.gpus]
        if not any(groups):
            raise HptError(_no_room(inventory, need, "gpus_per_trial auto"))
    elif g < 1:
        k = per_gpu(g)
        groups = []
        for gpu in inventory.gpus:
            if mem is None:  # a 1/k share of what is free, where nvidia-smi says (other processes' memory)
                cap = min(gpu.memory_total_mib, _free(gpu)) // k
                groups.append([((gpu,), 1 / k, cap, None)] * (k if cap >= 1 else 0))
            else:
                groups.append([((gpu,), 1 / k, mem, None)] * min(k, _free(gpu) // mem))
        if not any(groups) and mem is not None:
            raise HptError(_no_room(inventory, mem, f"gpus_per_trial {asked}"))
        if not any(groups):  # no memory asked for: every GPU is full of other processes' memory
            raise HptError(f"resources.gpus_per_trial {asked}: every GPU's memory is in use by other processes "
                           f"({_listing(inventory)}); free a GPU, or use --gpus none to run on CPUs")
    else:
        if not float(g).is_integer():
            raise ValueError(f"gpus_per_trial {g:g}: more than one GPU per trial must be a whole number")
        n = int(g)
        usable = [gpu for gpu in inventory.gpus if mem is None or _free(gpu) >= mem]
        if len(usable) < n:
            have = f"{len(usable)} with {mem} MiB free" if mem is not None else str(len(inventory.gpus))
            raise HptError(f"resources.gpus_per_trial is {n} but this machine has {have} GPU"
                           f"{'s' if have != '1' else ''} to give ({_listing(inventory)}); "
                           f"lower gpus_per_trial or pick GPUs with --gpus")
        groups = [[(tuple(usable[i:i + n]), 1.0, mem, None)] for i in range(0, len(usable) - n + 1, n)]
    return _round_robin(groups)


def capped(slots: Sequence[Slot], inventory: Inventory, gpus_per_trial: float | str, cpus_per_trial: int = 1,
           workers: int | None = None, gpu_memory_per_trial_mib: int | None = None) -> str:
    """Why `plan`'s GPU `slots` are fewer than the GPUs have room for, for the end of describe's
    first line: "capped at 2 usable CPUs / cpus_per_trial 1; the GPUs have room for 52 (-j N to use
    more)", or "capped by -j 3; ..."; "" where nothing capped them (and for CPU slots)."""
    if not slots or not slots[0].gpu_indices:
        return ""
    g = parse_gpus_per_trial(gpus_per_trial)
    mem = gpu_memory_per_trial_mib
    room = len(_gpu_room(inventory, "auto" if g == 0 else g, mem))
    if room <= len(slots):
        return ""
    if workers is not None:
        return f"capped by -j {workers}; the GPUs have room for {room}"
    cpus = f"{inventory.cpus} usable CPU{'s' if inventory.cpus != 1 else ''}"
    return f"capped at {cpus} / cpus_per_trial {cpus_per_trial}; the GPUs have room for {room} (-j N to use more)"


def describe(slots: Sequence[Slot], cap: str = "") -> list[str]:
    """Lines for the start of a run: "8 slots: gpu0 x2, gpu1 x2, gpu2 x2, gpu3 x2", then the
    share of a GPU and the CPU threads each trial gets. Memory caps that differ between GPUs are
    listed per GPU; "auto" says the memory each trial was admitted by. `cap` (`capped`'s) ends
    the first line in parentheses."""
    if not slots:
        return ["0 slots"]
    counts: dict[str, int] = {}
    for s in slots:
        counts[s.label] = counts.get(s.label, 0) + 1
    parts = ", ".join(f"{label} x{n}" if n > 1 else label for label, n in counts.items())
    lines = [f"{len(slots)} slot{'s' if len(slots) != 1 else ''}: {parts}" + (f" ({cap})" if cap else "")]
    first = slots[0]
    threads = first.env.get("HPT_TORCH_THREADS", "?")
    each = f"{threads} CPU thread{'s' if threads != '1' else ''}"
    if not first.gpu_indices:
        return [*lines, f"each trial: {each}, no GPU"]
    if first.admitted_mib is not None:
        share = f"{first.admitted_mib} MiB of a GPU (by free memory{', capped there' if first.memory_mib else ''})"
    elif 0 < first.share < 1:
        share = f"1/{round(1 / first.share)} of a GPU"
    else:
        share = f"{len(first.gpu_indices)} GPUs" if len(first.gpu_indices) > 1 else "a GPU"
    caps: dict[int, list[str]] = {}  # cap -> the GPUs' labels, in slot order
    for s in slots:
        if s.memory_mib is not None and s.admitted_mib is None and s.label not in caps.get(s.memory_mib, []):
            caps.setdefault(s.memory_mib, []).append(s.label)
    if len(caps) == 1:
        share += f", up to {next(iter(caps))} MiB"
    elif caps:
        share += " (up to " + ", ".join(f"{cap} MiB on {', '.join(labels)}" for cap, labels in caps.items()) + ")"
    return [*lines, f"each trial: {share}, {each}"]


def notes(slots: Sequence[Slot], cpus: int) -> list[str]:
    """"note: ..." lines where the slots' CPU threads outnumber the `cpus` this process may use:
    cpus_per_trial above them (any slot), or GPU slots x cpus_per_trial above them (CPU slots are
    usable CPUs // cpus_per_trial unless -j says more). Each says what to set."""
    if not slots:
        return []
    threads = int(slots[0].env.get("HPT_TORCH_THREADS", "1"))
    usable = f"{cpus} usable CPU{'s' if cpus != 1 else ''}"
    if threads > cpus:
        return [f"note: cpus_per_trial is {threads} but this process may use only {usable} (its affinity "
                f"mask), which each trial's {threads} threads share; set --cpus-per-trial (or "
                f"resources.cpus_per_trial) to at most {cpus}"]
    n = sum(1 for s in slots if s.gpu_indices)
    if n * threads > cpus:
        fewer = f" or --cpus-per-trial {cpus // n}" if 1 <= cpus // n < threads else ""
        return [f"note: {n} GPU slots x {threads} CPU thread{'s' if threads != 1 else ''} = {n * threads} threads "
                f"on {usable}, so trials share them; set -j {cpus // threads}{fewer} to keep within them"]
    return []


def _round_robin(groups: list[list]) -> list:
    out = []
    for depth in range(max((len(x) for x in groups), default=0)):
        out.extend(x[depth] for x in groups if depth < len(x))
    return out


def _threads(cpus: int) -> dict[str, str]:
    env = {var: str(cpus) for var in THREAD_VARS}
    env["HPT_TORCH_THREADS"] = str(cpus)
    return env


def _cpu_slot(i: int, cpus: int) -> Slot:
    env = {"CUDA_VISIBLE_DEVICES": "", "HPT_DEVICE": "cpu", **_threads(cpus)}
    return Slot(name=f"w{i}", gpu_indices=(), device="cpu", env=env, label="cpu")


def _gpu_slot(i: int, gpus: tuple[Gpu, ...], share: float, memory_mib: int | None, cpus: int,
              admitted_mib: int | None = None) -> Slot:
    indices = tuple(g.index for g in gpus)
    env = {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",  # so CUDA numbers GPUs as nvidia-smi does
        "CUDA_VISIBLE_DEVICES": ",".join(str(x) for x in indices),
        "HPT_DEVICE": "cuda:0",
        **_threads(cpus),
    }
    if memory_mib is not None:
        env["HPT_GPU_MEMORY_MIB"] = str(memory_mib)
    label = "gpu" + ",".join(str(x) for x in indices)
    return Slot(name=f"w{i}", gpu_indices=indices, device="cuda:0", env=env, label=label, share=share,
                memory_mib=memory_mib, admitted_mib=admitted_mib)


def _free(gpu: Gpu) -> int:
    """Its free MiB; its total where nvidia-smi gave neither used nor free ([N/A])."""
    return gpu.memory_free_mib if gpu.memory_free_mib or gpu.memory_used_mib else gpu.memory_total_mib


def _listing(inventory: Inventory) -> str:
    return ", ".join(f"{g.label} {g.memory_free_mib}/{g.memory_total_mib} MiB free" for g in inventory.gpus)


def _no_room(inventory: Inventory, need: int | None, what: str) -> str:
    return (f"resources.{what}: no GPU has {need} MiB free for a trial ({_listing(inventory)}); "
            f"lower resources.gpu_memory_per_trial or free a GPU")
