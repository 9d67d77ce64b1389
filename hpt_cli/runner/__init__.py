"""`run_spec`: everything `hpt run` does, as a library call (the CLI only adds signals and output).

Checks what can be checked before any trial starts (architectures resolve, every date range has
data; local workers boot while the data is checked), picks the run folder (`<output>/<run-id>`),
then hands the trials to a Runner.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from hpt_cli.architectures import COMMAND, get
from hpt_cli.devices import THREAD_VARS, describe, notes, plan_run
from hpt_cli.errors import DISK_FULL_ERRNOS, DataError, ExitCode, HptError, write_fix
from hpt_cli.executors import LocalExecutor
from hpt_cli.runner.events import RunInfo, RunObserver, TrialOutcome
from hpt_cli.runner.loop import MaxFailures, Runner, RunResult, failure_budget
from hpt_cli.runner.run_id import claim_fresh
from hpt_cli.runner.run_id import run_id as make_run_id
from hpt_cli.search import make_searcher
from hpt_cli.spec.model import Resources, Spec
from hpt_cli.storage import StorageError, open_lock, open_store, spool_path, trial_log
from hpt_cli.storage.lock import acquire

DEFAULT_METRICS = ("val_mse",)


@dataclass(frozen=True)
class RunOptions:
    output: str | None = None  # overrides the spec's "output"
    workers: int | None = None  # default: usable CPUs // cpus_per_trial
    isolate: bool = False  # a fresh process per trial
    fresh: bool = False  # a new run id instead of resuming
    max_failures: MaxFailures | int | str = 0  # an int is a count; "10%", "1.0": fractions (MaxFailures)
    spool: Path | None = None  # gs:// outputs: where the local copy goes (default ~/.cache/hpt/spool)
    upload_interval: float = 5.0  # gs:// outputs: seconds between appends of new rows
    upload_timeout: float = 60.0  # gs:// outputs: how long the end of a run retries before exit 4
    max_time: float | None = None  # seconds: stop dispatching then, exit 6
    grace: float = 300.0  # seconds running trials may go on after max_time
    lock: str = "fail"  # another run holds the run folder: fail (exit 5) | skip (exit 0) | wait
    gpus: str | None = None  # --gpus: "0,2", "none", or None for every GPU found
    executor: str | None = None  # local | dask (default: the spec's "executor")
    scheduler: str | None = None  # dask: tcp://host:8786 (default: the spec's, or DASK_SCHEDULER_ADDRESS)
    log_limit: int | None = trial_log.DEFAULT_LIMIT  # bytes of each trial's log.txt kept; None: all
    # --gpus-per-trial, --cpus-per-trial, --gpu-memory-per-trial: override spec.resources for placement
    # (run_resources); None: the spec's. Not in the run id, as --workers is not.
    gpus_per_trial: float | str | None = None
    cpus_per_trial: int | None = None
    gpu_memory_per_trial_mib: int | None = None


def metric_columns(spec: Spec) -> list[str]:
    """Metrics that get a column: the spec's, the objective, then what the architectures report."""
    names = [*spec.metrics, spec.objective.metric]
    for arch in spec.architectures:
        names.extend(get(arch).metrics)
    return list(dict.fromkeys(names))


def preflight(spec: Spec, executor: str | None = None) -> list[str]:
    """Raise a user error now for what would otherwise fail every trial; return notes (one line
    each, without "note: ") on what runs but may not be what was meant. `executor`: --executor.
    A name that does not resolve and is a near miss of a built-in ("rigde") is a SpecError (a
    typo on every machine; `hpt validate` says it with its line), not a missing plugin."""
    from hpt_cli.architectures.check import near_miss_problems
    from hpt_cli.errors import SpecError

    typos = near_miss_problems(spec)
    if typos:
        raise SpecError(typos)
    notes = resolve_architectures(spec, executor)
    return notes + check_data(spec)


def resolve_architectures(spec: Spec, executor: str | None = None) -> list[str]:
    """Every architecture resolves (a 'module:function' one may add the working folder to sys.path,
    which workers inherit: so this comes before any worker starts), and its train function can be
    called as train(params, ctx). Then the spec's parameter names and objective against what they
    declare reading and reporting: a SpecError (exit 2) for a name none of them reads or a metric
    none of them reports (hpt_cli.architectures.check). A command's program must exist here for
    the local executor (exit 2); on Dask, where other machines run it, that is a note. An adaptive
    strategy adds what it does not honour as random search does (hpt_cli.search.adaptive.spec_notes;
    an HptError when its package is missing here)."""
    from hpt_cli.architectures import ArchitectureError, say_shadowed
    from hpt_cli.architectures.check import (
        command_problem,
        epochs_notes,
        signature_problem,
        spec_problems,
        value_problems,
    )
    from hpt_cli.errors import SpecError

    resolved = {arch: get(arch) for arch in spec.architectures}
    if any(":" not in arch and arch != COMMAND for arch in resolved):  # a plugin named like it is never used
        say_shadowed()
    for name, arch in resolved.items():
        why = None if name == COMMAND else signature_problem(name, arch.train)
        if why:
            raise ArchitectureError(why)
    problems = spec_problems(spec, resolved) + value_problems(spec, resolved)
    if problems:
        raise SpecError(problems)
    notes = epochs_notes(spec, resolved)
    if spec.search.strategy not in ("grid", "random"):  # Optuna is imported for adaptive ones only
        from hpt_cli.search.adaptive import spec_notes

        notes += spec_notes(spec)
    why = command_problem(spec.command) if COMMAND in resolved else None
    if why is None:
        return notes
    if (executor or spec.executor.type) == "dask":
        return [*notes, f"{why} (on this machine; the Dask workers run it)"]
    raise HptError(why)


def check_data(spec: Spec) -> list[str]:
    """Every date range (and its validation window) has rows with target values in the data the
    trials will read, and one row per date where a built-in architecture reads it. Returns notes:
    ranges that start before the data, windows its end cuts short, missing days, `Unnamed: <n>`
    columns left out (hpt_cli.datasets.check_coverage)."""
    needs = [a for a in spec.architectures if a != COMMAND and get(a).needs_data]
    if not needs and spec.data.path is None and COMMAND not in spec.architectures:
        return []
    from hpt_cli.datasets import check_coverage

    try:
        return check_coverage(spec.data, spec.date_ranges, spec.rolling,
                              default_day=spec.today if spec.default_dates else None,
                              architectures=spec.architectures)
    except DataError as exc:
        if needs or spec.data.path is not None:
            raise
        # a command given no "data" may read none: the bundled data's gaps are a note, not a refusal
        return [f"{exc} (a command need not read hpt's data, so it runs anyway)"]


def run_spec(
    spec: Spec,
    options: RunOptions = RunOptions(),
    observers: Sequence[RunObserver] = (),
    stop: threading.Event | None = None,
    now: datetime | None = None,
    say=None,
) -> RunResult:
    """Run the spec. `say(line)` receives notices such as waiting for a lock."""
    from hpt_cli.spec.modes import for_running

    spec = for_running(spec)  # "mode": "quick" in the spec (idempotent; --quick applies it earlier)
    output = options.output or spec.output
    rid = make_run_id(spec, fresh_at=(now or datetime.now()) if options.fresh else None)
    searcher = make_searcher(spec)
    total = searcher.total() or 0
    notes = resolve_architectures(spec, options.executor)
    made = _boot_local(spec, options, total)
    try:
        notes += check_data(spec)
        executor, workers, devices, placement = made or make_executor(spec, options, total)
    except BaseException:
        if made:
            made[0].shutdown()
        raise
    max_time = options.max_time
    try:
        try:
            waiting_since = time.monotonic()
            if options.fresh:  # the stamped id, else -2, -3 ...: never a folder another run holds or used
                rid, lock = claim_fresh(rid, lambda candidate: open_lock(output, candidate, options.spool))
                taken = True
            else:
                lock = open_lock(output, rid, options.spool)
                taken = acquire(lock, options.lock, say=say, stop=stop, max_wait=max_time)
            if max_time is not None:  # --lock wait: the wait counts against --max-time
                max_time = max(1e-3, max_time - (time.monotonic() - waiting_since))
        except OSError as exc:  # the output location (or a gs:// run's spool) cannot be created or written
            raise _unwritable(output, rid, options.spool, exc) from None
        if not taken:
            executor.shutdown()
            return RunResult(rid, lock.where, ExitCode.OK, {}, {"status": "skipped"},
                             skipped_because=f"{lock.where} is locked by another run; skipped (--lock skip)")
    except BaseException:
        executor.shutdown()
        raise
    try:
        try:
            store = open_store(output, rid, spool=options.spool, interval=options.upload_interval,
                               upload_timeout=options.upload_timeout, stop=stop,
                               offline=lock.offline)
        except OSError as exc:
            raise _unwritable(output, rid, options.spool, exc) from None
        runner = Runner(spec, rid, searcher, executor, store, metric_columns(spec), workers,
                        observers=observers, max_failures=options.max_failures, stop=stop,
                        max_time=max_time, grace=options.grace, devices=devices,
                        notes=[*placement, *(f"note: {n}" for n in notes)], log_limit=options.log_limit)
        return runner.run()
    finally:
        executor.shutdown()  # idempotent; the runner has already shut it down unless it failed early
        lock.release()


def _unwritable(output: str, rid: str, spool: Path | None, exc: OSError) -> HptError:
    """The one line for a run folder (or, on gs://, its local spool) that cannot be written."""
    why = exc.strerror or str(exc)
    folder = spool_path(output, rid, spool)
    if exc.errno in DISK_FULL_ERRNOS:  # the place is right; the disk is full: exit 4
        return StorageError(f"{folder or f'{output}/{rid}'}: cannot write the run folder ({why}); {write_fix(exc)}")
    if folder is not None:
        return HptError(f"{folder}: cannot create the local spool of {output}/{rid} ({why}); give --spool DIR "
                        "(or set HPT_SPOOL) to a folder you can write")
    return HptError(f"{output}/{rid}: cannot create the run folder ({why}); give --output a folder you can write")


def _boot_local(spec: Spec, options: RunOptions, total: int):
    """make_executor's result with the local workers already booting, or None.

    A worker is a fresh interpreter that takes ~70 ms to import its loop; started before the
    preflight (which imports pandas and reads the data: ~0.4 s in a fresh `hpt run`), that time
    overlaps. Not while `--lock wait` may keep the run waiting for hours, and not for Dask, whose
    scheduler is contacted only once the spec has passed its checks.
    """
    if (options.executor or spec.executor.type) != "local" or options.lock == "wait":
        return None
    made = make_executor(spec, options, total)
    made[0].start()
    return made


def run_resources(spec: Spec, options: RunOptions) -> Resources:
    """The spec's resources with the command line's overrides. `--gpus-per-trial 0` alone drops the
    spec's gpu_memory_per_trial (CPU slots); gpu_memory_per_trial with gpus_per_trial 0 is "auto"."""
    r = spec.resources
    if options.gpus_per_trial is not None:
        r = replace(r, gpus_per_trial=options.gpus_per_trial)
        if options.gpus_per_trial == 0:
            r = replace(r, gpu_memory_per_trial_mib=None)
    if options.cpus_per_trial is not None:
        r = replace(r, cpus_per_trial=options.cpus_per_trial)
    if options.gpu_memory_per_trial_mib is not None:
        r = replace(r, gpu_memory_per_trial_mib=options.gpu_memory_per_trial_mib)
    if r.gpus_per_trial == 0 and r.gpu_memory_per_trial_mib is not None:
        r = replace(r, gpus_per_trial="auto")
    return r


def make_executor(spec: Spec, options: RunOptions, total: int):
    """The executor, its slot count, slot -> device labels and placement notes for the run.

    local: slots planned from the GPU/CPU inventory (hpt_cli.devices). dask: the cluster's
    capacity for the trial's resources (CPU, GPU); started here so an unreachable scheduler is an
    error before anything else happens. `--gpus none` drops the GPU request there; a GPU list is
    refused (a Dask worker offers the GPUs it was started with).
    """
    r = run_resources(spec, options)
    kind = options.executor or spec.executor.type
    if kind == "dask":
        from hpt_cli.executors._dask_task import LOG_LIMIT_VAR
        from hpt_cli.executors.dask import DaskExecutor

        scheduler = options.scheduler or spec.executor.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
        if not scheduler:
            raise HptError("the dask executor needs a scheduler: --scheduler tcp://host:8786 (or "
                           "\"executor\": {\"type\": \"dask\", \"scheduler\": ...} in the spec)")
        choice = (options.gpus or "all").strip().lower()
        if choice not in ("all", "none"):
            raise HptError(f"--gpus {options.gpus}: on Dask each worker offers the GPUs it was started with "
                           f"(CUDA_VISIBLE_DEVICES={options.gpus} hpt worker SCHEDULER); give --gpus none or all")
        needs = {"CPU": float(r.cpus_per_trial)}
        if r.gpus_per_trial and choice != "none":
            if r.gpus_per_trial == "auto":
                raise HptError("resources.gpus_per_trial \"auto\" (also gpu_memory_per_trial without a share) "
                               "needs the local executor; give a share (0.5) or a count of GPUs for dask")
            needs["GPU"] = float(r.gpus_per_trial)
        env = {var: str(r.cpus_per_trial) for var in THREAD_VARS}
        env["HPT_TORCH_THREADS"] = str(r.cpus_per_trial)
        if "GPU" not in needs:  # no GPU asked for (or --gpus none): the trial sees none, as in a local CPU slot
            env.update(CUDA_VISIBLE_DEVICES="", HPT_DEVICE="cpu")
        elif r.gpu_memory_per_trial_mib is not None:  # the trial's cap, as locally (the worker keeps it)
            env["HPT_GPU_MEMORY_MIB"] = str(r.gpu_memory_per_trial_mib)
        if options.log_limit:  # a worker without the run folder cuts the log before it ships it back
            env[LOG_LIMIT_VAR] = str(options.log_limit)
        modules = sorted({a.partition(":")[0] for a in spec.architectures if ":" in a})  # each worker imports them
        executor = DaskExecutor(scheduler, slots=options.workers, resources_per_job=needs, env=env, imports=modules)
        executor.start()
        workers = options.workers or max(1, executor.free_slots())
        return executor, workers, executor.devices, [
            f"dask: {scheduler}, {workers} trial{'s' if workers != 1 else ''} at a time"]
    try:
        inventory, slots = plan_run(r.gpus_per_trial, r.cpus_per_trial, options.workers, r.gpu_memory_per_trial_mib,
                            options.gpus)
    except ValueError as exc:
        raise HptError(f"resources: {exc}") from None
    slots = slots[: max(1, total)]  # no idle workers for a small sweep
    placement = describe(slots) if any(s.gpu_indices for s in slots) else []
    placement += notes(slots, inventory.cpus)
    # a built-in reads the data in every trial; a function of yours may not, and then its workers
    # need not import pandas at all: it is warmed with a data file of your own only
    reads_data = any(a != COMMAND and get(a).needs_data and (":" not in a or spec.data.path is not None)
                     for a in spec.architectures)
    # the run's data, loaded (and cached for the worker's life) before a worker says it is ready
    warmup = ("hpt_cli.datasets:load_dataset", spec.data.absolute()) if reads_data else None
    executor = LocalExecutor(len(slots), isolate=options.isolate, slot_env=[s.env for s in slots], warmup=warmup)
    return executor, len(slots), {s.name: s.label for s in slots}, placement


__all__ = ["MaxFailures", "RunInfo", "RunObserver", "RunOptions", "RunResult", "Runner", "TrialOutcome",
           "check_data", "failure_budget", "metric_columns", "preflight", "resolve_architectures", "run_spec"]
