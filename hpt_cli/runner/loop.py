"""The run loop: ask the searcher while a slot is free, hand trials to the executor, write rows.

One thread; the executor's `wait` is the only place it blocks. A stop request (a signal handler
sets `stop`) ends dispatching, cancels the running trials and finishes the run folder: every
finished trial is already a row, the cancelled ones are not (a rerun runs them).
"""

from __future__ import annotations

import functools
import math
import platform
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from hpt_cli import __version__
from hpt_cli.devices.worker import is_oom_error
from hpt_cli.errors import ExitCode, is_disk_full
from hpt_cli.executors import Executor, Job, JobResult
from hpt_cli.runner.events import RunInfo, RunObserver, TrialOutcome
from hpt_cli.search.base import Searcher
from hpt_cli.search.schedulers import SCHEDULER_DIR
from hpt_cli.search.trial import Trial, canonical_json
from hpt_cli.spec.model import Spec
from hpt_cli.storage import trial_log
from hpt_cli.storage.base import RunStore
from hpt_cli.storage.gcs import StorageError
from hpt_cli.storage.local import disk_full_error
from hpt_cli.storage.results import Columns, csv_line
from hpt_cli.trialrun import STOPPED_KEY, TrialPayload

TRIAL_FUNC = "hpt_cli.trialrun:run_trial"
POLL_S = 0.25
_COMMAND_GRACE_S = 5.0  # the executor's limit past a command trial's own trial.timeout
# A trial process ended by a signal that asks processes to stop, sent from outside hpt: Jenkins'
# abort and systemd's stop signal every process of the tree, a closed terminal sends SIGHUP. Not
# the trial's failure (a row would keep it from ever running again): no row while the run stops;
# started again, not as an attempt, while it does not (the runner's own signal may be on its way).
_OUTSIDE_STOP = re.compile(r"(?:worker died|command exited) with signal (SIGTERM|SIGHUP|SIGINT)\b"
                           r"|died with <Signals\.(SIGTERM|SIGHUP|SIGINT):")  # subprocess.CalledProcessError
MAX_OUTSIDE_STOPS = 3  # per trial; then such an ending is the trial's failure, as any other


@dataclass
class _Held:
    """A trial that ran out of GPU memory next to other trials, waiting for a GPU of its own."""

    trial: Trial
    attempt: int
    gpus: frozenset[str] | None = None  # the GPU(s) kept free of new trials until it can start there


@dataclass
class RunResult:
    run_id: str
    uri: str
    exit_code: int
    counts: dict[str, int]
    summary: dict[str, Any] = field(default_factory=dict)
    storage_error: str | None = None  # set when the results stay in the local spool (exit 4)
    skipped_because: str | None = None  # --lock skip found the run folder locked
    warnings: list[str] = field(default_factory=list)  # e.g. a report file that could not be written


_COUNT = re.compile(r"\d+")
_DECIMAL = re.compile(r"(\d+\.\d*|\.\d+)(e[-+]?\d+)?|\d+e[-+]?\d+", re.IGNORECASE)
_PERCENT = re.compile(r"(\d+\.?\d*|\.\d+)\s*%")
_EXPECTED = "expected a count (3) or a fraction (0.1 or 10%; 1.0 or 100% lets every trial fail)"


@dataclass(frozen=True)
class MaxFailures:
    """How many failed (or timed-out) trials still exit 0 (`--max-failures`): a count of trials,
    or a fraction of the run's trials. The kind is explicit, never guessed from the number's size:
    "1" is one trial, "1.0" and "100%" are every trial."""

    count: int | None = 0
    fraction: Fraction | None = None  # in [0, 1]; set only where count is None

    @classmethod
    def parse(cls, text: str) -> MaxFailures:
        """"3": a count; "10%": a fraction (0% to 100%); "0.1", "1.0": a fraction in [0, 1].
        ValueError with a one-line message for anything else."""
        raw = str(text).strip()
        if _COUNT.fullmatch(raw):
            return cls(count=int(raw))
        if (m := _PERCENT.fullmatch(raw)) is not None:
            value = Fraction(m.group(1)) / 100
            if value > 1:
                raise ValueError(f"a percentage is at most 100% (every trial may fail), got {raw!r}")
            return cls(count=None, fraction=value)
        if _DECIMAL.fullmatch(raw):
            value = Fraction(raw)
            if value > 1:
                raise ValueError(f"a fraction is at most 1.0 (every trial may fail) and a count is a whole "
                                 f"number (3), got {raw!r}")
            return cls(count=None, fraction=value)
        raise ValueError(f"{_EXPECTED}, got {text!r}")

    @classmethod
    def of(cls, value: MaxFailures | int | float | str) -> MaxFailures:
        """An int is a count; a str (or a float, by its shortest repr) reads as `parse` says."""
        if isinstance(value, MaxFailures):
            return value
        if isinstance(value, bool):
            raise ValueError(f"{_EXPECTED}, got {value!r}")
        if isinstance(value, int):
            if value < 0:
                raise ValueError(f"{_EXPECTED}, got {value!r}")
            return cls(count=value)
        return cls.parse(repr(value) if isinstance(value, float) else value)

    def allowed(self, total: int) -> float:
        """Failed trials tolerated among `total` trials (infinity for a fraction of 1)."""
        if self.count is not None:
            return self.count
        assert self.fraction is not None
        if self.fraction >= 1:
            return math.inf  # every trial, also where the total is not known in advance
        return math.floor(self.fraction * total)  # exact: 29% of 100 is 29

    def __str__(self) -> str:
        if self.count is not None:
            return str(self.count)
        return f"{float(self.fraction * 100):g}%"


def failure_budget(max_failures: MaxFailures | int | float | str, total: int) -> float:
    """How many failed trials are tolerated among `total` (see MaxFailures)."""
    return MaxFailures.of(max_failures).allowed(total)


def objective_problem(metrics: dict[str, Any], objective: str, stopped: bool = False) -> str | None:
    """Why a finished trial's metrics make it a failure, or None: its objective is NaN or
    infinite (a diverged training run, as a rule), not a number (a string or a bool, which other
    metrics may be), or missing. A trial stopped early by the scheduler may lack the objective
    (it reports what its last `ctx.report` had)."""
    value = metrics.get(objective)
    if value is None:
        if stopped:
            return None
        got = ", ".join(metrics) if metrics else "no metrics"
        return f"returned no {objective}, the objective (it returned: {got})"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"objective {objective} is {value!r} ({type(value).__name__}); the objective must be a number"
    if not math.isfinite(value):
        return f"objective {objective} is {value} (the trial diverged?)"
    return None


class Runner:
    """Runs one spec's trials into one run folder."""

    def __init__(
        self,
        spec: Spec,
        run_id: str,
        searcher: Searcher,
        executor: Executor,
        store: RunStore,
        metrics: Sequence[str],
        workers: int,
        observers: Sequence[RunObserver] = (),
        max_failures: MaxFailures | int | float | str = 0,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
        max_time: float | None = None,
        grace: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
        devices: dict[str, str] | None = None,
        notes: Sequence[str] = (),
        log_limit: int | None = trial_log.DEFAULT_LIMIT,
    ):
        self.spec = spec
        self.run_id = run_id
        self.searcher = searcher
        self.executor = executor
        self.store = store
        self.workers = workers
        self.observers = list(observers)
        self.observer_errors: list[str] = []  # observers dropped after raising
        self.max_failures = MaxFailures.of(max_failures)
        self.stop = stop or threading.Event()
        self.clock = clock
        self.max_time = max_time
        self.grace = grace
        self.monotonic = monotonic
        self.capped = False
        self.dropped = 0  # trials the executor gave back cancelled unasked: no row, the run is incomplete
        # slot name -> "gpu0" / "gpu0,1" / "cpu" (Dask: "gpu0@host", filled in as trials start), for the rows
        self.devices = {} if devices is None else devices
        self.notes = list(notes)
        self.log_limit = log_limit  # bytes of a trial's log.txt kept (head and tail); None: all
        self.columns = Columns(spec.parameter_names, metrics)
        self.counts = {"ok": 0, "stopped": 0, "failed": 0, "timeout": 0, "skipped": 0, "cancelled": 0}
        self.best: dict[str, Any] | None = None
        self._running: dict[str, tuple[Trial, int]] = {}  # job key -> (trial, attempt)
        self._retry: deque[tuple[Trial, int]] = deque()
        # a GPU out-of-memory error next to other trials: one more attempt alone on a GPU (docs/gpu.md),
        # where the executor lets the runner pick slots (free_slot_names() is not None)
        self._slot_of: dict[str, str] = {}  # job key -> the slot the runner gave it
        self._met: dict[str, set[str]] = {}  # job key -> trials that ran on its GPU while it ran
        self._held: deque[_Held] = deque()  # such retries waiting for a GPU with no trial running
        self._alone: dict[str, frozenset[str]] = {}  # job key of such a retry -> its GPU(s), kept for it
        self._oom_retried: set[str] = set()  # trial ids given that attempt
        self._first_start: dict[str, float] = {}
        self._outside_stops: dict[str, int] = {}  # trial id -> times a stop signal from outside ended it
        self._rungs: str | None = None  # the scheduler's folder, when the spec has a scheduler

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        started = self.clock()
        header, rows = self.store.read_results()
        done = {row["trial_id"] for row in rows}
        if header is not None:
            self.columns = Columns.from_header(header, self.spec.parameter_names)
        for row in rows:  # the summary and the exit code speak for the whole run folder
            self._consider_best(row)
            status = row.get("status", "")
            if status in self.counts and status not in ("skipped", "cancelled"):
                self.counts[status] += 1
        self.searcher.replay(rows)  # an adaptive search learns from the finished rows
        self.store.append_results(self.columns.header, [])
        self._write_spec()
        self._rungs = self._scheduler_folder()
        total = self.searcher.total() or 0
        info = RunInfo(self.run_id, self.store.uri, total, len(done), self.workers,
                       self.spec.objective.metric, self.spec.objective.mode, self.spec.to_json(),
                       notes=self.notes + self.store.notes(), earlier=rows,
                       param_columns=dict(self.columns.params))
        self._emit("run_started", info)
        self.executor.start()
        exhausted = False
        cap_at = self.monotonic() + self.max_time if self.max_time else None
        try:
            while not self.stop.is_set():
                if cap_at is not None and not self.capped and self.monotonic() >= cap_at:
                    self.capped = True  # --max-time: no new trials; running ones get the grace
                    self._retry.clear()
                    self._held.clear()
                if not self.capped:
                    exhausted = self._dispatch(done, exhausted)
                if (exhausted or self.capped) and not self._running and not self._retry and not self._held:
                    break
                if self.capped and self.monotonic() >= cap_at + self.grace:
                    break  # the rest are cancelled below; they have no row and rerun on resume
                results = self.executor.wait(POLL_S)
                for result in results:
                    self._finish(result)
                if not results and not self._running:  # nothing runs and nothing could be dispatched:
                    self.stop.wait(POLL_S)  # wait() returned at once; do not spin (no Dask worker, say)
                self._emit("tick", len(self._running))
        finally:
            interrupted = self.stop.is_set()
            for result in self.executor.shutdown(cancel=True):
                self._finish(result)
        result = self._summarise(started, interrupted, total)
        try:
            self.store.close()  # uploads summary.json too (gs://)
        except StorageError as exc:  # the results stay in the local spool: every record says exit 4
            run_code = result.exit_code
            result.exit_code = exc.exit_code
            result.storage_error = str(exc)
            result.summary = {**result.summary, "status": exc.status, "exit_code": exc.exit_code,
                              "run_status": result.summary["status"], "run_exit_code": run_code,
                              "storage_error": str(exc)}
            try:
                self.store.write_json("summary.json", result.summary)  # the spool's; `hpt sync` uploads it
            except (StorageError, OSError):  # the spool's disk: the error above says what to do
                pass
        self._emit("run_finished", result.summary)  # once the exit code is final
        result.warnings = list(self.observer_errors)
        return result

    def _dispatch(self, done: set[str], exhausted: bool) -> bool:
        self._place_held()
        while not self.stop.is_set():
            slots = self._open_slots()
            if not slots:
                break
            if self._retry:
                trial, attempt = self._retry.popleft()
            elif exhausted:
                return True
            else:
                trial = self.searcher.ask()
                if trial is None:
                    exhausted = True
                    continue
                if trial.id in done:
                    self.counts["skipped"] += 1
                    continue
                done.add(trial.id)
                attempt = 1
            self._submit(trial, attempt, slots[0])
        return exhausted

    # -- GPU out of memory: one more attempt alone on a GPU ----------------------------------------
    def _gpus(self, slot: str | None) -> frozenset[str]:
        """The GPUs a slot's trials see, from its device label ("gpu0,1": {"0", "1"}; "cpu": none)."""
        return _label_gpus(self.devices.get(slot or "", ""))

    def _shares_gpu(self, slot: str | None) -> bool:
        gpus = self._gpus(slot)
        return bool(gpus) and any(other != slot and self._gpus(other) & gpus for other in self.devices)

    def _kept_gpus(self, but: _Held | None = None) -> frozenset[str]:
        """GPUs no new trial may take: those kept for held retries (`but` one) and running lone ones."""
        kept = {g for held in self._held if held is not but and held.gpus for g in held.gpus}
        kept.update(g for gpus in self._alone.values() for g in gpus)
        return frozenset(kept)

    def _running_on(self, gpus: frozenset[str]) -> int:
        return sum(1 for slot in self._slot_of.values() if self._gpus(slot) & gpus)

    def _open_slots(self) -> list[str | None]:
        """Where a new trial (or an ordinary retry) may start now: where the executor picks slots
        itself, None once per free slot; else the free slots on no GPU kept for a held retry."""
        names = self.executor.free_slot_names()
        if names is None:
            return [None] * self.executor.free_slots()
        kept = self._kept_gpus()
        return [slot for slot in names if not self._gpus(slot) & kept] if kept else names

    def _place_held(self) -> None:
        """Start each held retry that has a GPU with no trial running (the one kept for it if it is
        among them); for one that has none, keep the GPU with the fewest trials running free of new
        trials, so it empties while the other GPUs stay busy."""
        for held in list(self._held):
            if self.stop.is_set():
                return
            taken = self._kept_gpus(but=held) | {g for slot in self._slot_of.values() for g in self._gpus(slot)}
            lone = [slot for slot in self.executor.free_slot_names() or []
                    if self._gpus(slot) and not self._gpus(slot) & taken]
            if lone:
                self._held.remove(held)
                slot = next((s for s in lone if self._gpus(s) == held.gpus), lone[0])
                self._submit(held.trial, held.attempt, slot, alone=True)
            elif held.gpus is None:
                others = self._kept_gpus(but=held)
                units = {self._gpus(slot): None for slot in self.devices if self._gpus(slot)}
                free = [gpus for gpus in units if not gpus & others]
                held.gpus = min(free, key=self._running_on, default=None)  # the first of a tie

    def _oom_retry(self, trial: Trial, result: JobResult, error: str | None, slot: str | None,
                   met: set[str]) -> bool:
        """Whether a failed attempt gets one more, alone on a GPU: it ended with hpt's GPU
        out-of-memory error while other trials ran on its GPU, and has not had that attempt yet.
        Writes the `hpt:` line that says why (or why not, on a GPU it shares with other slots)."""
        if result.status != "failed" or not is_oom_error(error):
            return False
        label = self.devices.get(slot or "", "")
        if not met:
            if self._shares_gpu(slot):
                self._log_note(trial.id, f"GPU out of memory with no other trial running on {label}: "
                                         f"no retry with fewer neighbours")
            return False
        if trial.id in self._oom_retried:
            return False
        others = f"{len(met)} other trial{'s' if len(met) != 1 else ''} ({', '.join(sorted(met))})"
        self._log_note(trial.id, f"GPU out of memory on {label} next to {others}: one more attempt, "
                                 f"alone on a GPU, once a GPU has no other trial running")
        self._oom_retried.add(trial.id)
        return True

    def _attempts(self, trial: Trial) -> int:
        """How many attempts a trial may have: trial.retries + 1, and one after an OOM next to others."""
        return self.spec.trial.retries + 1 + (trial.id in self._oom_retried)

    def _submit(self, trial: Trial, attempt: int, slot: str | None = None, alone: bool = False) -> None:
        folder = self._folder(trial.id)
        data = None if self.spec.data is None else self.spec.data.absolute()  # the runner's folder's
        payload = TrialPayload(
            trial_id=trial.id,
            architecture=trial.architecture,
            params=trial.params,
            date_range=tuple(trial.date_range.to_json()),
            seed=trial.seed,
            epochs=self.spec.trial.epochs,
            data=data,
            artifact_dir=str(folder),
            command=self.spec.command,
            timeout=self.spec.trial.timeout,
            scheduler=self._scheduler_for(trial),
            whole_gpu=alone,  # the retry alone on a GPU: its worker's share of the memory is lifted
        )
        key = f"{trial.id}#{attempt}"
        if attempt == 1 and trial.id not in self._first_start and _has_output(folder / "log.txt"):
            self._log_note(trial.id, "started again: an earlier run of this folder ended while this trial ran, "
                                     "with no row for it (the output above, and any files beside, are that run's)")
        if attempt > 1:  # each retry's output starts with a line that says which attempt it is
            where = f", alone on {self.devices.get(slot or '', slot)}" if alone else ""
            self._log_note(trial.id, f"attempt {attempt} of {self._attempts(trial)}{where}")
        job = Job(key, TRIAL_FUNC, payload, timeout=self._hard_timeout(), log_path=str(folder / "log.txt"))
        if slot is None:
            self.executor.submit(job)
        else:
            self.executor.submit(job, slot=slot)
            gpus = self._gpus(slot)
            met = self._met[key] = set()
            for other, other_slot in self._slot_of.items() if gpus else ():
                if gpus & self._gpus(other_slot):  # neighbours on a GPU: each meets the other
                    met.add(self._running[other][0].id)
                    self._met[other].add(trial.id)
            self._slot_of[key] = slot
            if alone:
                self._alone[key] = gpus
        self._running[key] = (trial, attempt)
        self._first_start.setdefault(trial.id, self.clock())
        self._emit("trial_started", trial, attempt, len(self._running))

    def _finish(self, result: JobResult) -> None:
        trial, attempt = self._running.pop(result.key)
        slot, met = self._slot_of.pop(result.key, None), self._met.pop(result.key, set())
        alone = self._alone.pop(result.key, None) is not None  # the GPU out-of-memory retry, alone on a GPU
        signal_name = _outside_stop(result)
        if signal_name and not (self.stop.is_set() or self.capped):  # every such ending, counted
            self._outside_stops[trial.id] = self._outside_stops.get(trial.id, 0) + 1
        if signal_name and (self.stop.is_set() or self.capped):
            self._log_note(trial.id, f"ended by {signal_name} from outside hpt while the run stopped: no row; "
                                     "a rerun runs it again")
        elif signal_name and self._outside_stops[trial.id] <= MAX_OUTSIDE_STOPS:
            self._log_note(trial.id, f"ended by {signal_name} from outside hpt (a stop of the whole process "
                                     "tree?): started again, not counted as an attempt")
            trial_log.cap(self._folder(trial.id) / "log.txt", self.log_limit)
            if alone:
                self._held.append(_Held(trial, attempt))  # again alone on a GPU, with its whole memory
            else:
                self._retry.append((trial, attempt))
            return
        if result.status == "cancelled" or (signal_name and (self.stop.is_set() or self.capped)):
            self.counts["cancelled"] += 1
            if result.status == "cancelled" and not (self.stop.is_set() or self.capped):
                self.dropped += 1  # not asked for: the executor dropped it (Dask)
            trial_log.cap(self._folder(trial.id) / "log.txt", self.log_limit)
            return
        status = {"ok": "ok", "timeout": "timeout"}.get(result.status, "failed")
        if status == "failed" and (result.error or "").startswith("TimeoutError:"):
            status = "timeout"  # the trial's own limit (a command trial enforces trial.timeout itself)
        if status == "failed" and is_disk_full(result.error):  # not the trial's outcome: no row, exit 4
            raise disk_full_error(trial.id, str(self._folder(trial.id)), _one_line(result.error))
        error = result.error
        if signal_name and self._outside_stops.get(trial.id, 0) > 1:
            error = f"{error} (ended by a stop signal from outside hpt {self._outside_stops[trial.id]} times; see log.txt)"
        metrics = dict(result.value or {}) if status == "ok" else {}
        stopped_at = metrics.pop(STOPPED_KEY, None)
        if stopped_at is not None:  # the scheduler stopped it early (hpt_cli.search.schedulers)
            status = "stopped"
            metrics.setdefault("epochs_run", stopped_at)
        if status in ("ok", "stopped"):  # a NaN, infinite or missing objective: failed, metrics kept
            problem = objective_problem(metrics, self.spec.objective.metric, stopped=status == "stopped")
            if problem is not None:
                status, error = "failed", problem
        if status not in ("ok", "stopped") and result.traceback is None:  # the log does not say why
            self._log_note(trial.id, self._why(result, error))
        again = None  # "alone": one more attempt on a GPU of its own; "retry": one of trial.retries
        if status not in ("ok", "stopped") and not (self.stop.is_set() or self.capped):
            if self._oom_retry(trial, result, error, slot, met):
                again = "alone"
            elif attempt < self._attempts(trial):
                again = "retry"
        trial_log.cap(self._folder(trial.id) / "log.txt", self.log_limit)  # before the row and upload
        if again == "alone":
            self._held.append(_Held(trial, attempt + 1))
            return
        if again == "retry":
            self._retry.append((trial, attempt + 1))
            return
        started = self._first_start.pop(trial.id, result.started_at)
        ended = result.ended_at or self.clock()
        fields = {
            "trial_id": trial.id,
            "status": status,
            "architecture": trial.architecture,
            "start": trial.date_range.start.isoformat(),
            "end": trial.date_range.end.isoformat(),
            "repeat": trial.repeat,
            "seed": trial.seed,
            "attempts": attempt,
            "started_at": _iso(result.started_at or started),
            "ended_at": _iso(ended),
            "duration_s": round(max(0.0, ended - (result.started_at or started)), 4),
            "worker": result.worker,
            "device": self.devices.get(result.worker, "cpu"),
            "artifact_dir": self.store.artifact_uri(trial.id),
            "error": _one_line(error) if status not in ("ok", "stopped") else "",
        }
        cells = self.columns.row(fields, trial.params, metrics or {})
        self.store.append_results(self.columns.header, [csv_line(cells)])
        self.store.trial_finished(trial.id)
        row = dict(zip(self.columns.header, cells))
        self.counts[status] += 1
        if status == "ok":
            self._consider_best(row)
        outcome = TrialOutcome(trial, status, dict(metrics or {}), fields["error"] or None,
                               fields["duration_s"], attempt, result.worker, fields["artifact_dir"], row)
        told = dict(metrics) if status in ("ok", "stopped") else None  # stopped: numbers of fewer epochs
        self.searcher.tell(trial, told, stopped=status == "stopped")
        self._emit("trial_finished", outcome)

    def _hard_timeout(self) -> float | None:
        """The executor's limit: trial.timeout, plus a small grace for a command trial, which
        enforces trial.timeout itself (hpt_cli.command)."""
        timeout = self.spec.trial.timeout
        return timeout + _COMMAND_GRACE_S if (timeout and self.spec.command) else timeout

    def _why(self, result: JobResult, error: str | None) -> str:
        """The line a trial's log ends with where the trial could not write why it ended."""
        if result.status == "timeout" and self.spec.trial.timeout:
            limit = f"trial.timeout {self.spec.trial.timeout:g}s"
            if self.spec.command:
                limit += f", and {_COMMAND_GRACE_S:g} s for the command trial to stop"
            return f"killed after {float(self._hard_timeout())} s ({limit})"
        return _one_line(error) or str(result.status)

    def _log_note(self, trial_id: str, text: str) -> None:
        """Append `hpt: <text>` as a line of its own to the trial's log.txt (best effort: a log
        that cannot take it never changes the trial's outcome). Written before the trial's row,
        so a gs:// run uploads it with the trial's files."""
        trial_log.append_note(self._folder(trial_id) / "log.txt", text)

    def _folder(self, trial_id: str) -> Path:
        """The trial's folder in the run folder (the store makes it once)."""
        return self.store.trial_dir(trial_id)

    def _consider_best(self, row: dict[str, str]) -> None:
        metric = self.spec.objective.metric
        if row.get("status") != "ok":
            return
        try:
            value = float(row.get(metric, ""))
        except ValueError:
            return
        if not math.isfinite(value):  # a row of an earlier version may hold NaN or inf as ok
            return
        sign = 1 if self.spec.objective.mode == "min" else -1
        if self.best is None or sign * value < sign * self.best["value"]:
            self.best = {"trial_id": row["trial_id"], "metric": metric, "value": value,
                         "architecture": row.get("architecture"),
                         "date_range": [row.get("start"), row.get("end")],
                         "artifact_dir": row.get("artifact_dir")}

    # -- the scheduler ---------------------------------------------------------------------------
    def _scheduler_folder(self) -> str | None:
        """<run folder>/.scheduler, created here (a worker never creates it: where it is absent,
        on a worker without the shared filesystem, the scheduler stops nothing)."""
        if self.spec.scheduler is None:
            return None
        return str(self.store.local_dir(SCHEDULER_DIR).resolve())

    def _scheduler_for(self, trial: Trial) -> dict[str, Any] | None:
        s = self.spec.scheduler
        if s is None or self._rungs is None:
            return None
        return {"type": s.type, "metric": s.metric, "mode": s.mode, "grace": s.grace, "reduction": s.reduction,
                "folder": self._rungs, "group": f"{trial.date_range}#{trial.repeat}",
                "config": canonical_json([trial.architecture, trial.params])}

    # -- the run folder --------------------------------------------------------------------------
    def _write_spec(self) -> None:
        doc = self.spec.to_json()
        doc["hpt"] = {
            **self.spec.meta(),
            "run_id": self.run_id,
            "seed": self.spec.search.seed,
            "created_at": _iso(self.clock()),
            "versions": _versions(),
            "command_line": sys.argv,
        }
        self.store.write_json("spec.json", doc)

    def _summarise(self, started: float, interrupted: bool, total: int) -> RunResult:
        failed = self.counts["failed"] + self.counts["timeout"]
        # the counts speak for the whole folder, which may hold more than a smaller budget asks for
        total = max(total, failed + self.counts["ok"] + self.counts["stopped"])
        if interrupted:
            code = ExitCode.INTERRUPTED
        elif self.capped:
            code = ExitCode.TIME_CAP
        elif self.dropped:
            code = ExitCode.STORAGE  # the executor lost trials: rerunning the command runs them
        elif failed > self.max_failures.allowed(total):
            code = ExitCode.TRIALS_FAILED
        else:
            code = ExitCode.OK
        ended = self.clock()
        summary = {
            "run_id": self.run_id,
            "name": self.spec.name,
            "status": ("interrupted" if interrupted else "time_cap" if self.capped
                       else "incomplete" if self.dropped else "complete"),
            "exit_code": code,
            "total": total,
            "counts": dict(self.counts),
            "objective": {"metric": self.spec.objective.metric, "mode": self.spec.objective.mode},
            "best": self.best,
            "started_at": _iso(started),
            "ended_at": _iso(ended),
            "wall_time_s": round(ended - started, 3),
        }
        self.store.write_json("summary.json", summary)
        return RunResult(self.run_id, self.store.uri, code, dict(self.counts), summary)

    def _emit(self, event: str, *args: Any) -> None:
        for observer in list(self.observers):
            try:
                getattr(observer, event)(*args)
            except Exception as exc:  # noqa: BLE001 - a display must not stop the run (e.g. `| head`)
                self.observers.remove(observer)
                self.observer_errors.append(f"{type(observer).__name__}: {type(exc).__name__}: {exc}")


@functools.lru_cache(maxsize=None)
def _label_gpus(label: str) -> frozenset[str]:
    if not label.startswith("gpu") or "@" in label:  # a Dask label names a host's GPU: not placed here
        return frozenset()
    return frozenset(label[3:].split(","))


def _outside_stop(result: JobResult) -> str | None:
    """The signal (SIGTERM, SIGHUP, SIGINT) that ended a failed or crashed job from outside hpt, or None."""
    if result.status not in ("failed", "crashed"):
        return None
    found = _OUTSIDE_STOP.search(result.error or "")
    return None if found is None else found.group(1) or found.group(2)


def _has_output(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())[:500]


def _versions() -> dict[str, str]:
    out = {"hpt": __version__, "python": platform.python_version()}
    for module in ("numpy", "scipy", "pandas"):
        mod = sys.modules.get(module)
        if mod is not None:
            out[module] = getattr(mod, "__version__", "?")
    return out
