"""Progress on the terminal: a live line on a TTY, one plain line per finished trial otherwise."""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, TextIO

from hpt_cli.runner.events import RunInfo, RunObserver, TrialOutcome
from hpt_cli.sanitize import plain
from hpt_cli.storage.results import PASSED
from hpt_cli.words import plural


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress(RunObserver):
    """`live`: redraw one status line with carriage returns (a terminal); else plain lines."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None, quiet: bool = False,
                 clock=time.monotonic, status_every: float = 60.0, env=os.environ):
        self.stream = stream or sys.stderr
        if live is None:  # a terminal, and not a CI job (which may fake one)
            live = self.stream.isatty() and not env.get("CI") and env.get("TERM") != "dumb"
        self.live = live
        self.status_every = status_every
        self._last_status = None
        self.quiet = quiet
        self.clock = clock
        self.done = self.failed = self.running = 0
        self.best: tuple[float, str] | None = None
        self.first_failure: str | None = None  # the artifact folder of this run's first failed trial
        self._drawn = 0.0
        self._width = 0

    def run_started(self, info: RunInfo) -> None:
        self.info = info
        self.todo = max(0, info.total - info.skipped)
        self.started = self.clock()
        if not self.quiet:
            resumed = f", {info.skipped} already done (resuming)" if info.skipped else ""
            if info.skipped > info.total:  # a smaller budget than an earlier attempt's
                resumed = (f"; the run folder holds {info.skipped} finished trials, more than this spec asks for "
                           f"(an earlier attempt had a larger budget): resuming")
            self._line(f"run {info.run_id}: {plural(info.total, 'trial')} on {plural(info.workers, 'worker')}"
                       f"{resumed}")
            self._line(f"results: {info.uri}/results.csv")
            for note in info.notes:
                self._line(note)
            failed = sum(1 for row in info.earlier if row.get("status") in ("failed", "timeout"))
            if failed:  # after a fix to the trial code, the user expects them to run again
                self._line(f"note: {plural(failed, 'failed trial')} of earlier attempts "
                           f"{'is' if failed == 1 else 'are'} kept (a rerun skips every trial with a row); "
                           f"--fresh starts a new run that runs every trial again")

    def trial_started(self, trial, attempt: int, running: int) -> None:
        self.running = running

    def trial_finished(self, o: TrialOutcome) -> None:
        self.done += 1
        self.running = max(0, self.running - 1)
        if o.status not in PASSED:
            self.failed += 1
            if self.first_failure is None:
                self.first_failure = o.artifact_dir
        value = o.metrics.get(self.info.objective)
        if not isinstance(value, (int, float)) or isinstance(value, bool):  # a failed trial's string
            value = None
        if value is not None and math.isfinite(value) and o.status == "ok":  # stopped: fewer epochs
            sign = 1 if self.info.mode == "min" else -1
            if self.best is None or sign * value < sign * self.best[0]:
                self.best = (value, o.trial.id)
        if self.quiet:
            return
        if self.live:
            self._draw(force=True)
            return
        passed = o.status in PASSED and value is not None  # a failed trial's metrics: its error says why
        what = f"{self.info.objective}={value:.6g}" if passed else plain(o.error or "")
        if o.status == "stopped" and "epochs_run" in o.metrics:
            what += f" at epoch {o.metrics['epochs_run']:g}"
        self._line(f"[{self.done}/{self.todo}] {o.status:<7} {o.trial.id} {o.trial.architecture} "
                   f"{o.trial.date_range} {what} ({o.duration_s:.1f} s)")

    def tick(self, running: int) -> None:
        self.running = running
        if self.quiet:
            return
        if self.live:
            self._draw()
            return
        now = self.clock()
        if self._last_status is None:
            self._last_status = now
        elif now - self._last_status >= self.status_every:
            self._last_status = now
            best = f", best {self.info.objective} {self.best[0]:.6g}" if self.best else ""
            self._line(f"status: {self.done}/{self.todo} done, {self.failed} failed, {self.running} running"
                       f"{best}, {_clock(now - self.started)} elapsed")

    def run_finished(self, summary: dict[str, Any]) -> None:
        if self.live and not self.quiet:
            self._draw(force=True)
            self.stream.write("\n")
        c = summary["counts"]
        best = summary.get("best")
        best_text = (f"; best {best['metric']} {best['value']:.6g} (trial {best['trial_id']})"
                     if best else "")
        status = {"interrupted": "interrupted", "time_cap": "stopped at --max-time", "incomplete": "incomplete"}.get(
            summary.get("run_status", summary["status"]), "done")  # run_status: set when the upload failed
        self._line(f"{status}: {c['ok']} ok"
                   + (f", {c['stopped']} stopped early" if c.get("stopped") else "")
                   + f", {c['failed']} failed, {c['timeout']} timed out"
                   + (f" ({self.info.skipped} of them done before this run)" if self.info.skipped else "")
                   + (f", {c['cancelled']} cancelled" if c["cancelled"] else "")
                   + f" in {_clock(summary['wall_time_s'])}{best_text}{self._errors_at(c)}")
        self._line(f"results: {self.info.uri}/results.csv")

    def _errors_at(self, counts: dict[str, int]) -> str:
        """On a terminal, where a run with failures has their errors (the live line showed only
        a count; plain output has printed each failure's error line already)."""
        if not self.live or not (counts.get("failed") or counts.get("timeout")):
            return ""
        folder = self.first_failure
        if folder is None:  # failures of earlier invocations only (resumed run)
            folder = next((row.get("artifact_dir") for row in self.info.earlier
                           if row.get("status") in ("failed", "timeout") and row.get("artifact_dir")), None)
        if folder is None:
            return f"; errors: hpt report {self.info.uri}"
        if "://" not in folder and not os.path.isabs(folder):
            folder = f"{self.info.uri}/{folder}"
        return f"; errors: hpt report {self.info.uri}, or {folder}/log.txt"

    def _draw(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._drawn < 0.2:
            return
        self._drawn = now
        width = 24
        filled = int(width * self.done / self.todo) if self.todo else width
        elapsed = now - self.started
        eta = _clock(elapsed / self.done * (self.todo - self.done)) if self.done else "?"
        best = f" best {self.best[0]:.6g}" if self.best else ""
        text = (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.todo} done, "
                f"{self.failed} failed, {self.running} running,{best} ETA {eta}")
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def _line(self, text: str) -> None:
        if self.live and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()
