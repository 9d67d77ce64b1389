"""`hpt run SPEC`: run every trial of a spec on local worker processes."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import click

from hpt_cli.cli import cli, why_unwritable
from hpt_cli.cli.device_commands import CPUS_PER_TRIAL, GPU_MEMORY, GPUS_PER_TRIAL
from hpt_cli.cli.progress import Progress
from hpt_cli.cli.spec_commands import located, read_spec, today_option
from hpt_cli.dates import parse_duration
from hpt_cli.errors import ExitCode, SpecError
from hpt_cli.runner import RunObserver, RunOptions, run_spec
from hpt_cli.runner.loop import MaxFailures
from hpt_cli.runner.reporters import EventLog, JUnitReport, SummaryFile
from hpt_cli.sizes import parse_size


class FailureBudget(click.ParamType):
    """--max-failures: a count of trials (3), or a fraction of them (10%, 0.1; 100% or 1.0: all)."""

    name = "N|FRACTION"

    def convert(self, value, param, ctx):
        try:
            return MaxFailures.of(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class LogLimit(click.ParamType):
    """--log-limit: a size (10MiB, 512KiB, bytes when bare), or none / 0 for no limit."""

    name = "SIZE|none"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int):
            return value
        if str(value).strip().lower() in ("none", "0"):
            return None
        try:
            return parse_size(value, example="10MiB or 512KiB (none: no limit)", what="a log size") or None
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Duration(click.ParamType):
    """90, 90s, 30m, 2h, 1d: seconds (0 too, where `allow_zero`)."""

    name = "DURATION"

    def __init__(self, allow_zero: bool = False):
        self.allow_zero = allow_zero

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            return parse_duration(value, allow_zero=self.allow_zero)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _check_writable(option: str, path: str) -> None:
    """A report file the pipeline asked for must be writable before hours of trials start."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise click.BadParameter(f"cannot write {path}: {why_unwritable(path, exc)}", param_hint=option) from None


class StopOnSignal:
    """SIGINT/SIGTERM/SIGHUP (a closed terminal or ssh session; left alone where `nohup` set it to
    be ignored): the first asks the run to stop (running trials are killed, finished rows kept,
    exit 3; exit 4 if a gs:// bucket does not answer then, the rest kept in the spool); a second
    one, of any kind, exits 3 at once (workers die with the runner), naming the run folder, or
    the spool of a gs:// run, which may hold what was not uploaded yet."""

    def __init__(self, stop: threading.Event, say):
        self.stop = stop
        self.say = say
        self.previous = {}
        self.spool: Path | None = None  # a gs:// run's spool, once the run has started
        self.folder: str | None = None  # a local run's folder, once the run has started

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                continue  # nohup: the user asked for the run to outlive the terminal
            self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.stop.is_set():
            if self.spool is not None:
                self.say(f"{name} again: quitting at once; what was not uploaded yet is in the spool "
                         f"{self.spool}; upload it with: hpt sync {self.spool}")
            elif self.folder is not None:
                self.say(f"{name} again: quitting at once; finished trials are kept in {self.folder} "
                         "(run the same command again to run the rest)")
            os._exit(ExitCode.INTERRUPTED)
        self.stop.set()
        again = "Ctrl-C again" if signum == signal.SIGINT else f"send {name} again"
        self.say(f"{name}: stopping; finished trials are kept ({again} to quit at once)")

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@cli.command(name="run")
@click.argument("spec_path", metavar="[SPEC]", required=False, type=click.Path(dir_okay=False))
@click.option("--auto", metavar="ARCH|SPEC", default=None,
              help="Auto mode: tune ARCH's default space (or SPEC's one architecture, a spec with no "
                   "parameters), learning-rate parameters first. See `hpt architectures --space`.")
@click.option("--stage", type=click.IntRange(1, 2), default=1, show_default=True,
              help="With --auto: 2 tunes the other parameters, the learning rate fixed at stage 1's best.")
@click.option("--quick", is_flag=True,
              help="Quick mode: the spec's \"quick\" block (default: the last date range cut to its last "
                   "month, 20 epochs).")
@click.option("--trials", type=click.IntRange(1, 10**9), default=None,
              help="How many configurations (overrides search.trials; with --auto, default 12).")
@click.option("--output", "-o", metavar="DIR|gs://...", default=None,
              help="Where run folders go: DIR or gs://bucket/prefix (overrides the spec's \"output\"; "
                   "default ./runs).")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=None,
              help="Trials at once; default: usable CPUs / resources.cpus_per_trial.")
@click.option("--gpus", default=None, metavar="LIST|none",
              help="GPUs to use, by nvidia-smi index (0,2), or none; default: every GPU found.")
@click.option("--gpus-per-trial", type=GPUS_PER_TRIAL, default=None,
              help="Overrides resources.gpus_per_trial for this run: 0, 0.5, 1/8, 1, 2 ... or 'auto' "
                   "(as `hpt devices` takes it; resources are not part of the run id).")
@click.option("--cpus-per-trial", type=CPUS_PER_TRIAL, default=None,
              help="Overrides resources.cpus_per_trial: CPU threads per trial.")
@click.option("--gpu-memory-per-trial", type=GPU_MEMORY, default=None,
              help="Overrides resources.gpu_memory_per_trial, e.g. 6GiB (with gpus_per_trial 0: 'auto' by "
                   "that memory).")
@click.option("--isolate", is_flag=True, help="A fresh worker process for every trial.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default=None,
              help="Where trials run (default: the spec's \"executor\", else local worker processes).")
@click.option("--scheduler", metavar="URL", default=None,
              help="The Dask scheduler for --executor dask (tcp://host:8786; or $DASK_SCHEDULER_ADDRESS).")
@click.option("--fresh", is_flag=True, help="Start a new run id instead of resuming the spec's run (stamped with "
                                           "the time; -2, -3 ... where that folder is taken).")
@click.option("--max-failures", type=FailureBudget(), default="0", show_default=True,
              help="Failed (or timed-out) trials that still exit 0: a count (3; 1 is one trial), or a "
                   "fraction of the trials: 10% or 0.1, and 100% or 1.0 for every trial.")
@click.option("--quiet", "-q", is_flag=True, help="Only the final summary.")
@click.option("--spool", type=click.Path(file_okay=False), default=None,
              help="gs:// outputs: the local copy written first (default $HPT_SPOOL or ~/.cache/hpt/spool).")
@click.option("--upload-interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="gs:// outputs: seconds between appends of new rows to results.csv.")
@click.option("--upload-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="gs:// outputs: seconds the end of the run keeps retrying before exit 4 (SIGINT or "
                   "SIGTERM cuts it short).")
@click.option("--events", metavar="FILE|-", default=None,
              help="Write one JSON line per event (run/trial started, finished, failed) to FILE or stdout.")
@click.option("--junit", metavar="FILE", default=None,
              help="Write JUnit XML (one test case per trial) for Jenkins' test view.")
@click.option("--summary-json", metavar="FILE", default=None, help="Also write summary.json to FILE.")
@click.option("--max-time", type=Duration(), default=None, metavar="DURATION",
              help="Stop dispatching after this long (90m, 2h); running trials get --grace; exit 6.")
@click.option("--grace", type=Duration(allow_zero=True), default="5m", show_default=True, metavar="DURATION",
              help="After --max-time, how long running trials may still finish before they are stopped "
                   "(0: stopped at the cap).")
@click.option("--lock", "lock_mode", type=click.Choice(["fail", "skip", "wait"]), default="fail",
              show_default=True, help="When another run holds the run folder: exit 5, exit 0, or wait (the wait "
                                        "counts against --max-time).")
@click.option("--status-every", type=click.FloatRange(min=1), default=60.0, show_default=True,
              metavar="SECONDS", help="Without a terminal: a status line this often.")
@click.option("--log-limit", type=LogLimit(), default="10MiB", show_default=True,
              help="Keep at most this much of each trial's log.txt: its first and last halves, with "
                   "a line saying how much was left out between them (none: keep all).")
@today_option
def run_command(spec_path, auto, stage, quick, trials, output, workers, gpus, gpus_per_trial, cpus_per_trial,
                gpu_memory_per_trial, isolate, executor, scheduler, fresh,
                max_failures, quiet, spool, upload_interval, upload_timeout, events, junit, summary_json,
                max_time, grace, lock_mode, status_every, log_limit, today) -> None:
    """Run every trial of SPEC on local worker processes and stream each finished trial as a row
    of <output>/<run-id>/results.csv (plus its model, log and curve under trials/<trial-id>/).

    The run id is the spec's name and a hash of what decides its trials: running the same spec
    again resumes the run, skipping the trials that already have a row (--fresh starts anew).

    \b
    Example:
      hpt run experiments/quickstart.json --output runs --workers 2
      python -c "import pandas; print(pandas.read_csv('runs/<run-id>/results.csv'))"
      hpt run --auto mlp --quick              # no spec: learning-rate parameters of mlp
      hpt run --auto mlp --quick --stage 2    # the rest, learning rate fixed at stage 1's best

    --quick (or "mode": "quick" in the spec) runs the spec's quick version: its last date range
    cut to its last month, 20 epochs (the spec's "quick" block changes that); its own run id.

    With --output gs://bucket/prefix, everything goes to a local spool first and is uploaded
    while the run goes on (rows every --upload-interval seconds, each trial's files when it
    ends); if the bucket stays unreachable the run still finishes and exits 4, naming the spool
    for `hpt sync`.

    For pipelines: --events, --junit and --summary-json write machine-readable records;
    --max-time caps the run; --lock decides what a second run of the same spec does.

    Exit codes: 0 all ok, 1 more failed trials than --max-failures, 2 bad spec or usage,
    3 interrupted (SIGINT/SIGTERM/SIGHUP; finished rows are kept), 4 storage unreachable (also when a
    signal stops the run while it is: the rest is in the spool, for `hpt sync`) or the run folder
    or spool cannot be written (a full disk: finished rows are kept; rerun to resume), 5 another
    run holds the lock, 6 --max-time reached (also while waiting for --lock wait), 70 an internal
    error (rerun with --debug and report it).
    """
    spec = _spec_to_run(spec_path, auto, stage, quick, trials, output, today)
    if scheduler is not None and (executor or spec.executor.type) != "dask":
        raise click.UsageError(_scheduler_without_dask(scheduler))
    options = RunOptions(output=output, workers=workers, isolate=isolate, fresh=fresh,
                         max_failures=max_failures, spool=Path(spool) if spool else None,
                         upload_interval=upload_interval, upload_timeout=upload_timeout,
                         max_time=max_time, grace=grace, lock=lock_mode, gpus=gpus, executor=executor,
                         scheduler=scheduler, log_limit=log_limit, gpus_per_trial=gpus_per_trial,
                         cpus_per_trial=cpus_per_trial, gpu_memory_per_trial_mib=gpu_memory_per_trial)
    for option, path in (("--events", events), ("--junit", junit), ("--summary-json", summary_json)):
        if path and path != "-":
            _check_writable(option, path)
    observers = [Progress(stream=sys.stderr, quiet=quiet, status_every=status_every)]
    if events:
        observers.append(EventLog(events))
    if junit:
        observers.append(JUnitReport(junit))
    if summary_json:
        observers.append(SummaryFile(summary_json))
    stop = threading.Event()
    def say(text: str) -> None:
        try:
            click.echo(text, err=True)
        except OSError:  # stderr closed (`hpt run ... 2>&1 | head`): the run's files say it all
            pass

    with StopOnSignal(stop, lambda text: say(f"\n{text}")) as signals:
        observers.append(_SpoolOf(signals, options.spool))
        try:
            result = run_spec(spec, options, observers=observers, stop=stop, say=say)
        except SpecError as exc:  # the preflight's: with SPEC's name and lines, as `hpt validate` says it
            if spec_path is None:  # --auto: a spec of its own making
                raise
            raise located(exc, spec_path) from None
    for warning in result.warnings:
        say(f"warning: {warning}")
    if result.skipped_because:
        say(f"skipped: {result.skipped_because}")
    if auto and result.exit_code in (ExitCode.OK, ExitCode.TRIALS_FAILED):
        _auto_next(result.uri, spec, auto, stage, quick, output, say)
    if result.storage_error:
        say(f"error: {result.storage_error}")
    elif result.summary.get("status") == "incomplete":
        n = result.counts.get("cancelled", 0)
        say(f"error: the executor dropped {n} trial{'s' if n != 1 else ''} (no row); run the same command again "
            f"to run {'them' if n != 1 else 'it'}")
    sys.exit(result.exit_code)


def _scheduler_without_dask(scheduler: str) -> str:
    """--scheduler where trials run locally: it would be ignored, so say what it is for (and, for
    asha or median, where early stopping is set)."""
    text = ("--scheduler is the Dask scheduler's address (tcp://host:8786) and goes with --executor dask "
            "(or \"executor\": \"dask\" in the spec)")
    if scheduler.strip().lower() in ("asha", "median"):
        text += f"; early stopping is the spec's \"scheduler\" key: \"scheduler\": {{\"type\": \"{scheduler.strip().lower()}\"}}"
    return text


class _SpoolOf(RunObserver):
    """Tells StopOnSignal where a gs:// run's spool is (a local run's folder), for the line a
    second signal prints."""

    def __init__(self, signals: StopOnSignal, root: Path | None):
        self.signals = signals
        self.root = root

    def run_started(self, info) -> None:
        if info.uri.startswith("gs://"):
            from hpt_cli.storage.gcs import GcsLocation
            from hpt_cli.storage.remote import spool_for

            self.signals.spool = spool_for(GcsLocation.parse(info.uri), self.root)
        else:
            self.signals.folder = info.uri


def _spec_to_run(spec_path, auto, stage, quick, trials, output, today):
    """The spec `hpt run` runs: SPEC, or auto stage `stage` of ARCH|SPEC; quick when asked."""
    from dataclasses import replace

    from hpt_cli.spec.auto import auto_spec
    from hpt_cli.spec.modes import for_running

    if auto is None:
        if spec_path is None:
            raise click.UsageError("give a SPEC, or --auto ARCH to tune an architecture's default space")
        if stage != 1:
            raise click.UsageError("--stage goes with --auto")
        spec = for_running(read_spec(spec_path, today), quick)
        if trials is not None:
            spec = replace(spec, search=replace(spec.search, trials=trials))
    else:
        if spec_path is not None:
            raise click.UsageError(f"give SPEC or --auto, not both (for a spec: --auto {spec_path})")
        target = read_spec(auto, today) if auto.endswith(".json") or auto == "-" or os.path.isfile(auto) else auto
        hint = f"hpt run --auto {auto}" + (" --quick" if quick else "") + (f" --output {output}" if output else "")
        spec = auto_spec(target, stage, output, quick=quick, trials=trials, rerun_hint=hint,
                         say=lambda text: click.echo(text, err=True))
    return spec


def _auto_next(uri, spec, auto, stage, quick, output, say) -> None:
    """After an auto stage: its best configuration, and what to run next."""
    from hpt_cli.errors import HptError
    from hpt_cli.spec.auto import AUTO_TRIALS, best_configuration

    try:
        params, value = best_configuration(uri, spec.objective.mode)
    except HptError:
        return
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    say(f"auto stage {stage}: best mean {spec.objective.metric} {value:.6g} with {shown}")
    if stage == 1 and spec.name.endswith("-stage1"):
        from hpt_cli.architectures import get

        arch = get(spec.architectures[0])
        if any(n not in arch.lr_params for n in arch.default_space) and arch.lr_params:
            where = f" --output {output}" if output else ""
            # the same budget for stage 2; a spec's own search.trials may differ from --trials
            same = spec.search.trials == AUTO_TRIALS and auto == arch.name
            budget = "" if same else f" --trials {spec.search.trials}"
            say(f"next: hpt run --auto {auto}{' --quick' if quick else ''}{where}{budget} --stage 2")
