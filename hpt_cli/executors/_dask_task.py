"""What runs on a Dask worker for one job of `DaskExecutor`: `run_job(...) -> dict`.

The job itself never runs in the Dask worker process: `run_job` hands it to a one-slot
`LocalExecutor` started right there, so the job runs in a fresh interpreter in its own process
group, with its file descriptors 1 and 2 in the job's log. A segfault, an `os._exit` or a timeout
kills that process group only; the Dask worker goes on. If the Dask worker itself dies, the trial
process sees its lifeline pipe close and kills its group (see hpt_cli/executors/_worker.py).

While the job runs, `run_job` polls two cancellation signals and kills the job when either fires:
- the executor's Dask `Event` (named by the client; `shutdown(cancel=True)` sets it), one small
  request to the scheduler every `_EVENT_POLL_S`;
- this task's own state on the worker: when the client cancels the future (a client-side timeout)
  or goes away, the scheduler releases the key and the worker marks the running task cancelled.

Whether the job's log folder is the runner's is decided by a marker the client writes into it
before it submits the task, named for the task's key (`shared_marker`): a name no earlier task
used, so a folder left behind by a worker that was killed while it staged cannot pass for it.
Where the marker is not seen (another machine, no shared filesystem), the folder is created here
at the same path (with `.hpt-staged` in it), and after the job its files come back in the result
(the log first cut to the run's --log-limit, `HPT_LOG_LIMIT` in `env`; the client writes them at
the same place on its side) and the folder is removed here. A folder that a task staged here and
never collected (its worker was killed) is removed and staged again; a folder at that path that
is neither the runner's nor staged by hpt fails the job (its files would stay on this worker).

GPU: a job that asks for a share of resource "GPU" below 1 gets one GPU of this worker, chosen here
(CUDA_VISIBLE_DEVICES=<id>, HPT_DEVICE=cuda:0); shares are packed per GPU (0.25 -> four jobs a
GPU). A share of 1 or more gets ceil(share) whole GPUs (CUDA_VISIBLE_DEVICES=<id>,<id>...). The ids
are the worker's own CUDA_VISIBLE_DEVICES, else 0..n-1 for the worker's GPU resource n. The rest of
the device environment is what a local slot gets from hpt_cli.devices.placement.plan for the same
share of the same GPUs: CUDA_DEVICE_ORDER=PCI_BUS_ID, and for a share 1/k placement's memory cap
HPT_GPU_MEMORY_MIB (1/k of the GPU's memory), from the GPU's memory as hpt_cli.devices.inventory.detect()
(nvidia-smi, or HPT_FAKE_GPUS) saw it at this worker process's first GPU job; a GPU it does not
list gets no cap, and an HPT_GPU_MEMORY_MIB in `env` (gpu_memory_per_trial) wins. A job without GPUs sees none (CUDA_VISIBLE_DEVICES="",
HPT_DEVICE=cpu), as a local CPU slot.

`probe(modules)` is what the client runs on every worker before the first job (`Client.run`): this
worker's hpt version and PROTOCOL (the arguments `run_job` takes), and which of the modules the
jobs import it cannot find.

This module must stay light: it is imported by every Dask worker that runs an hpt job.
"""

from __future__ import annotations

import importlib
import math
import os
import pickle
import shutil
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpt_cli.devices.inventory import Gpu, Inventory, detect
from hpt_cli.devices.placement import THREAD_VARS, plan
from hpt_cli.errors import HptError
from hpt_cli.executors.base import Job, JobStatus
from hpt_cli.executors.local import LocalExecutor

_POLL_S = 0.2  # how often the task looks at its trial process and its own task state
_EVENT_POLL_S = 0.5  # how often it asks the scheduler whether the executor's cancel event is set
_EPS = 1e-9
STARTED_TOPIC = "hpt-job-started"  # each task start: {"key": <Dask key>, "worker": <address>, "host", "gpus"}
LOG_LIMIT_VAR = "HPT_LOG_LIMIT"  # in `env`: bytes of a shipped log kept (trial_log.cap); not passed to the trial
STAGED = ".hpt-staged"  # in a folder made for a job: the task's key, then the parent folders made for it
PROTOCOL = 3  # run_job's arguments, result and staging markers; the client refuses workers that speak another

_gpu_lock = threading.Lock()
_gpu_use: dict[str, float] = {}  # GPU id -> share in use by jobs on this worker process
_known_gpus: dict[str, Gpu] | None = None  # GPU id -> what detect() says of it, read once per worker process
_stage_lock = threading.Lock()


def call_pickled(args: tuple[str, bytes, str]) -> Any:
    """Inside the trial process: import `func` and call it with the unpickled payload. A trial's
    'module:function' architecture that this worker cannot find is an error naming the worker
    (the runner's machine found it: the advice there, run hpt from its folder, does not apply)."""
    func, payload, worker = args
    module_name, _, attr = func.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    value = pickle.loads(payload)
    architecture = getattr(value, "architecture", None)
    if isinstance(architecture, str) and ":" in architecture:
        module = architecture.partition(":")[0]
        why = _missing(module)
        if why is not None:
            from hpt_cli.architectures import ArchitectureError

            raise ArchitectureError(
                f"cannot import {module!r} for architecture {architecture!r} on the Dask worker {worker} "
                f"({socket.gethostname()}): {why}; put the folder that holds it on that worker's PYTHONPATH "
                "(or start the worker in it), or install it there")
    return target(value)


def run_job(
    key: str,
    func: str,
    payload: bytes,
    timeout: float | None,
    log_path: str | None,
    env: Mapping[str, str],
    gpu_share: float | None,
    cancel_event: str,
    protocol: int | None = None,
) -> dict[str, Any]:
    """Run one job in a fresh process on this worker; return how it ended, as plain values."""
    from distributed import Event, get_worker

    worker = get_worker()
    started = time.time()
    if protocol != PROTOCOL:  # a client of another hpt version (the probe missed this worker)
        return _result(JobStatus.FAILED, f"the Dask worker {worker.address} runs hpt {_version()} (protocol "
                                         f"{PROTOCOL}), the runner's hpt speaks protocol {protocol}: install the "
                                         "runner's hpt version on every worker", started)
    task_key = worker.get_current_task()
    event = Event(cancel_event)
    if event.is_set():
        return _result(JobStatus.CANCELLED, "cancelled by shutdown", started)
    try:
        staged = _stage(log_path, str(task_key))
    except _NotTheRunners as exc:
        return _result(JobStatus.FAILED, f"on the Dask worker {worker.address}: {exc}", started)
    slot_env = dict(env)
    limit = slot_env.pop(LOG_LIMIT_VAR, None)
    gpus: list[str] = []
    local = None
    try:
        if gpu_share:
            gpus = _take_gpus(worker, gpu_share)
        slot_env.update(_device_env(worker, gpus, gpu_share or 0.0, slot_env))
        worker.log_event(STARTED_TOPIC, {"key": task_key, "worker": worker.address,
                                         "host": socket.gethostname(), "gpus": gpus})
        if log_path is not None:
            _note(log_path, f"[hpt] dask worker {worker.address} on {socket.gethostname()}"
                            + (f", GPU {','.join(gpus)}" if gpus else "")
                            + f", {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        local = LocalExecutor(1, slot_env=[slot_env])
        local.start()
        local.submit(Job(key, f"{__name__}:call_pickled", (func, payload, worker.address), timeout, log_path))
        next_event_poll = time.monotonic() + _EVENT_POLL_S
        while True:
            done = local.wait(timeout=_POLL_S)
            if done:
                break
            cancelled = _released(worker, task_key)
            if not cancelled and time.monotonic() >= next_event_poll:
                next_event_poll = time.monotonic() + _EVENT_POLL_S
                cancelled = _event_set(event)
            if cancelled:
                done = local.shutdown(cancel=True)
                break
        [inner] = done
        out = {
            "status": str(inner.status), "value": inner.value, "error": inner.error,
            "traceback": inner.traceback, "pid": inner.pid, "started_at": inner.started_at,
            "ended_at": inner.ended_at, "address": worker.address, "host": socket.gethostname(),
            "gpus": gpus,
        }
    finally:
        if local is not None:
            local.shutdown(cancel=True)  # the idle trial process and whatever it left running
        if gpus:
            _give_gpus(gpus, gpu_share)
    if staged is not None:
        if limit and log_path is not None:  # never ship (or hold) more of the log than the run keeps
            from hpt_cli.storage.trial_log import cap

            cap(log_path, int(limit))
        out["files"] = _collect(staged, str(task_key))
    return out


def _result(status: JobStatus, error: str, started: float) -> dict[str, Any]:
    return {"status": str(status), "value": None, "error": error, "traceback": None, "pid": None,
            "started_at": started, "ended_at": time.time(), "address": "", "host": socket.gethostname(),
            "gpus": []}


def _version() -> str:
    import hpt_cli

    return hpt_cli.__version__


def probe(modules: list[str]) -> dict[str, Any]:
    """This worker's hpt version and protocol, and {module: why} for each of `modules` (top-level
    names) that a job started here could not import: found on the worker's sys.path or in its
    working folder (which hpt adds for 'module:function' architectures), without importing it."""
    missing = {name: why for name in modules if (why := _missing(name)) is not None}
    return {"version": _version(), "protocol": PROTOCOL, "missing": missing}


def _missing(module: str) -> str | None:
    """Why the top-level package of `module` cannot be found here (sys.path, or the working
    folder, which hpt adds for 'module:function' architectures), or None. Imports nothing."""
    from importlib.machinery import PathFinder

    top = module.split(".")[0]
    if top in sys.builtin_module_names or top in sys.modules:
        return None
    try:
        if PathFinder.find_spec(top, [*sys.path, os.getcwd()]) is not None:
            return None
    except (ImportError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return f"no module named {top!r} on its sys.path or in its working folder {os.getcwd()}"


def _released(worker: Any, task_key: Any) -> bool:
    """Whether the scheduler has let go of this task (its future was cancelled or released)."""
    try:
        ts = worker.state.tasks.get(task_key)
    except AttributeError:  # a Worker without `.state`: rely on the event alone
        return False
    return ts is None or ts.state in ("cancelled", "released", "forgotten")


def _event_set(event: Any) -> bool:
    try:
        return bool(event.is_set())
    except Exception:  # noqa: BLE001 - scheduler unreachable: the task-state check holds
        return False


def _note(log_path: str, line: str) -> None:
    try:
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(line)
    except OSError:
        pass  # the trial process reports an unusable log path itself


# -- log folders that are not on this machine -------------------------------------------------------

class _NotTheRunners(Exception):
    """The job's folder exists on this worker, but it is neither the runner's nor staged by hpt."""


def shared_marker(task_key: str) -> str:
    """The name of the file the client writes into the job's log folder before it submits the
    task `task_key`: seen there by the task, the folder is the runner's (the same machine, or a
    shared filesystem). Unique per task, so never stale, and never cached as absent on NFS."""
    return f".hpt-task-{task_key}"


def _stage(log_path: str | None, task_key: str) -> list[Path] | None:
    """Create the log's folder here unless it is the runner's (its `shared_marker` is there).
    Returns the folders made for it, deepest first (its files are shipped back and these
    removed), or None when it is the runner's. A folder an earlier task staged and never
    collected (its worker was killed) is removed first; one hpt did not make raises
    _NotTheRunners."""
    if log_path is None:
        return None
    folder = Path(log_path).parent
    with _stage_lock:
        if (folder / shared_marker(task_key)).exists():
            return None  # same machine or a shared filesystem: files land where they belong
        if folder.is_dir():
            if not (folder / STAGED).is_file():
                raise _NotTheRunners(
                    f"{folder} exists here but is not the runner's folder (no shared filesystem), so the "
                    "trial's files would stay on this worker: remove it there, or give the run another "
                    "--output (or --spool)")
            # left by a task whose worker died before it shipped the files back: its folders are ours now
            inherited = [Path(p) for p in (folder / STAGED).read_text().splitlines()[1:]]
            shutil.rmtree(folder)
        else:
            inherited = []
        made = [folder, *(p for p in folder.parents if not p.exists() or p in inherited)]
        folder.mkdir(parents=True, exist_ok=True)  # an OSError here fails the task
        (folder / STAGED).write_text("\n".join([task_key, *map(str, made[1:])]))
    return made


def _collect(made: list[Path], task_key: str) -> list[tuple[str, bytes]]:
    """Every file under the staged folder as (relative path, bytes); then remove what was made
    (unless another task staged the folder again meanwhile)."""
    folder = made[0]
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and path != folder / STAGED:
            files.append((path.relative_to(folder).as_posix(), path.read_bytes()))
    with _stage_lock:
        try:
            ours = (folder / STAGED).read_text().partition("\n")[0] == task_key
        except OSError:
            ours = True
        if not ours:
            return files
        shutil.rmtree(folder, ignore_errors=True)
        for parent in made[1:]:  # only folders made for it, and only once empty
            try:
                parent.rmdir()
            except OSError:
                break
    return files


# -- GPUs of this worker ----------------------------------------------------------------------------

def _gpu_ids(worker: Any) -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible:
        return [g.strip() for g in visible.split(",") if g.strip()]
    try:
        count = int(worker.state.total_resources.get("GPU", 0))
    except (AttributeError, TypeError, ValueError):
        count = 0
    return [str(i) for i in range(count)]


def _take_gpus(worker: Any, share: float) -> list[str]:
    """The GPUs a job of `share` gets: below 1, the one with the most room for it; from 1 on,
    ceil(share) GPUs, the least used first (wholly free ones, as Dask's GPU resource has room for
    the job). Empty when the worker names no GPU."""
    ids = _gpu_ids(worker)
    if not ids:
        return []
    with _gpu_lock:
        if share < 1:
            gpu = min(ids, key=lambda g: (_gpu_use.get(g, 0.0) + share > 1 + _EPS,
                                          _gpu_use.get(g, 0.0), ids.index(g)))
            taken = [gpu]
        else:
            by_use = sorted(ids, key=lambda g: (_gpu_use.get(g, 0.0), ids.index(g)))
            taken = sorted(by_use[: min(len(ids), math.ceil(share - _EPS))], key=ids.index)
        for gpu in taken:
            _gpu_use[gpu] = _gpu_use.get(gpu, 0.0) + min(share, 1.0)
    return taken


def _device_env(worker: Any, gpus: list[str], share: float, env: Mapping[str, str]) -> dict[str, str]:
    """The device variables of a job given `gpus` (this worker's ids) for `share`: those of the slot
    hpt_cli.devices.placement.plan makes for that share of those GPUs (CUDA_DEVICE_ORDER, HPT_DEVICE,
    HPT_GPU_MEMORY_MIB: its cap for 1/k of the GPU), with CUDA_VISIBLE_DEVICES naming the ids as this
    worker does. No cap where this worker's inventory does not list a GPU, plan has none for the
    share (not 1/k: Dask packs 0.3 all the same), or `env` holds one (gpu_memory_per_trial). No
    GPU: a CPU slot's variables (CUDA_VISIBLE_DEVICES="", HPT_DEVICE=cpu)."""
    known = _gpus_of(worker) if gpus else {}
    measured = all(g in known for g in gpus)
    inventory = Inventory(gpus=tuple(known[g] if measured else _unknown(i) for i, g in enumerate(gpus)), cpus=1)
    slot = None
    if measured and 0 < share < 1:
        try:
            [slot] = plan(inventory, share, workers=1)
        except (ValueError, HptError):  # not 1/k, or no room by the memory read at the worker's first GPU job
            slot = None
    if slot is None:  # whole GPUs (no cap), or a CPU slot
        [slot] = plan(inventory, float(len(gpus)), workers=1)
    out = {k: v for k, v in slot.env.items() if k not in THREAD_VARS and k != "HPT_TORCH_THREADS"}
    if gpus:
        out["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    if "HPT_GPU_MEMORY_MIB" in env:
        out.pop("HPT_GPU_MEMORY_MIB", None)
    return out


def _unknown(index: int) -> Gpu:
    """A GPU this worker's inventory does not list (its memory unknown): placed as a whole GPU only."""
    return Gpu(index=index, uuid="", name="", memory_total_mib=0, memory_free_mib=0, memory_used_mib=0,
               utilization_pct=None)


def _gpus_of(worker: Any) -> dict[str, Gpu]:
    """This worker's GPU ids -> the GPUs detect() lists for them (nvidia-smi, or HPT_FAKE_GPUS; in
    the worker's CUDA_VISIBLE_DEVICES order), read on the first GPU job of this process."""
    global _known_gpus
    if _known_gpus is None:  # not under _gpu_lock: nvidia-smi may take seconds; two first jobs agree
        _known_gpus = {i: g for i, g in zip(_gpu_ids(worker), detect().gpus)
                       if i == str(g.index) or (i.startswith("GPU-") and g.uuid.startswith(i))}
    return _known_gpus


def _give_gpus(gpus: list[str], share: float) -> None:
    with _gpu_lock:
        for gpu in gpus:
            _gpu_use[gpu] = max(0.0, _gpu_use.get(gpu, 0.0) - min(share, 1.0))
