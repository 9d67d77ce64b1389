"""Command-template trials: run argv without a shell, collect metrics as JSON.

Each template item is formatted like `str.format(**params, trial_id=..., artifact_dir=..., start=...,
end=..., seed=..., epochs=..., device=..., data_path=...)` and becomes exactly one argument, so a
parameter value never reaches a shell.
A value fills its placeholder as it does its HPT_PARAM_* variable (`as_text`): a string as it is,
anything else as JSON (`true`, `null`, `["a b", "c"]`), unless the placeholder gives a format
(`{lr:.3f}`) or a conversion (`{x!s}`). The spec parser refuses a parameter named like a fact.
The child gets the same facts as HPT_* environment variables, and what the built-ins read from the
spec besides (HPT_TARGET, HPT_DATE_COLUMN, HPT_VALIDATION_END). It reports metrics as a JSON object
written to $HPT_METRICS_FILE, or as the last line of stdout that is a JSON object. The child stays
in the worker's process group, so the executor's hard timeout kills it along with the worker; what
it leaves running in the background is killed when it exits. A command killed by a signal is the
error `command exited with signal SIGTERM` (the signal's name), plus its last stderr line.
"""

from __future__ import annotations

import json
import os
import re
import string
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from hpt_cli.words import signal_name

if TYPE_CHECKING:
    from hpt_cli.trialrun import TrialPayload

METRICS_FILE = "metrics.json"
NO_METRICS = ("command printed no metrics: print a JSON object as the last line of stdout, "
              "or write one to $HPT_METRICS_FILE")
_KILL_GRACE_S = 5.0

__all__ = ["as_text", "build_argv", "build_env", "facts", "run_command"]


def facts(payload: TrialPayload) -> dict[str, Any]:
    """The values a template may name besides the parameters (hpt_cli.spec.parse.COMMAND_FACTS)."""
    return {
        "trial_id": payload.trial_id,
        "artifact_dir": str(Path(payload.artifact_dir).resolve()),
        "start": payload.date_range[0],
        "end": payload.date_range[1],
        "seed": payload.seed,
        "epochs": "" if payload.epochs is None else payload.epochs,
        "device": payload.device,
        "data_path": _data_path(payload) or "",
    }


def as_text(value: Any) -> str:
    """A value as a command receives it, in an argument or an HPT_* variable: a string as it is,
    anything else as JSON (numbers, true/false, null, lists and objects), as results.csv writes it."""
    return value if isinstance(value, str) else json.dumps(value)


class _JsonFormatter(string.Formatter):
    """str.format, with a placeholder without a format spec filled by `as_text`."""

    def format_field(self, value: Any, format_spec: str) -> str:
        return as_text(value) if not format_spec else super().format_field(value, format_spec)


_FORMATTER = _JsonFormatter()


def build_argv(payload: TrialPayload) -> list[str]:
    """One argument per template item; raise ValueError naming a bad placeholder."""
    if not payload.command:
        raise ValueError("a command trial needs a non-empty \"command\" template")
    values = {**payload.params, **facts(payload)}  # the parser refuses a parameter named like a fact
    argv = []
    for item in payload.command:
        try:
            argv.append(_FORMATTER.vformat(item, (), values))
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
            raise ValueError(f"cannot fill the command item {item!r}: {type(exc).__name__}: {exc}") from None
    return argv


def build_env(payload: TrialPayload, base: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ (or `base`) plus the HPT_* variables of this trial."""
    env = dict(os.environ if base is None else base)
    f = facts(payload)
    env.update({
        "HPT_TRIAL_ID": payload.trial_id,
        "HPT_ARTIFACT_DIR": f["artifact_dir"],
        "HPT_DATE_START": payload.date_range[0],
        "HPT_DATE_END": payload.date_range[1],
        "HPT_SEED": str(payload.seed),
        "HPT_DEVICE": payload.device,
        "HPT_PARAMS": json.dumps(payload.params, sort_keys=True),
        "HPT_METRICS_FILE": str(Path(f["artifact_dir"]) / METRICS_FILE),
    })
    data = payload.data  # what a built-in reads from the spec besides, so a command need not repeat it
    optional = {"HPT_EPOCHS": f["epochs"], "HPT_DATA_PATH": f["data_path"],
                "HPT_TARGET": "" if data is None else data.target,
                "HPT_DATE_COLUMN": "" if data is None else data.date_column,
                "HPT_VALIDATION_END": _validation_end(payload)}
    for key, value in optional.items():  # set when known; never the worker's own (stale) value
        if value == "":
            env.pop(key, None)
        else:
            env[key] = as_text(value)
    for name, value in payload.params.items():
        env[param_env_name(name)] = as_text(value)
    return env


def param_env_name(name: str) -> str:
    return "HPT_PARAM_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def run_command(payload: TrialPayload) -> dict[str, Any]:
    """Run the trial's command; return its metrics (unchecked JSON values).

    Raises RuntimeError (non-zero exit, no metrics, bad metrics file) or TimeoutError (ran past
    payload.timeout: the child is killed, the worker lives on)."""
    argv = build_argv(payload)
    env = build_env(payload)
    metrics_file = Path(env["HPT_METRICS_FILE"])
    metrics_file.parent.mkdir(parents=True, exist_ok=True)
    metrics_file.unlink(missing_ok=True)  # a retry must not read the failed attempt's file
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv list, never a shell
            argv, shell=False, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", bufsize=1,
        )
    except OSError as exc:
        raise RuntimeError(f"cannot start the command {argv[0]!r}: {exc.strerror or exc}") from None

    last_json: list[dict] = []
    last_err: list[str] = []
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, sys.stdout, last_json, True), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, sys.stderr, last_err, False), daemon=True),
    ]
    for t in readers:
        t.start()
    try:
        code = proc.wait(timeout=payload.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        _kill_leftovers()
        _join(readers)
        raise TimeoutError(f"command ran past its timeout of {payload.timeout:g}s and was killed") from None
    except BaseException:  # KeyboardInterrupt, SystemExit: never leave the child behind
        proc.kill()
        proc.wait()
        _kill_leftovers()
        raise
    _kill_leftovers()  # what the command started in the background ends with it
    _join(readers)

    if code != 0:
        tail = f": {last_err[0]}" if last_err else ""
        what = f"code {code}" if code > 0 else f"signal {signal_name(-code)}"
        raise RuntimeError(f"command exited with {what}{tail}")
    if metrics_file.exists():
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"cannot read $HPT_METRICS_FILE ({metrics_file}): {exc}") from None
        if not isinstance(metrics, dict):
            raise RuntimeError(f"$HPT_METRICS_FILE ({metrics_file}) holds {type(metrics).__name__}, "
                               f"not a JSON object of metrics")
        return metrics
    if last_json:
        return last_json[0]
    raise RuntimeError(NO_METRICS)


def _pump(source: IO[str], sink: IO[str], last: list, parse_json: bool) -> None:
    """Copy lines from the child to our stream; keep the last JSON object (stdout) or the last
    non-empty line (stderr) in `last`."""
    for line in source:
        try:
            sink.write(line)
            sink.flush()
        except (OSError, ValueError):
            pass  # our stream is gone; keep draining so the child never blocks
        text = line.strip()
        if parse_json:
            if text.startswith("{"):
                try:
                    obj = json.loads(text)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    last[:] = [obj]
        elif text:
            last[:] = [text[:500]]
    source.close()


def _kill_leftovers() -> None:
    """End the processes a command left behind (e.g. `sleep 30 &`, also `setsid` ones), which would
    hold its pipes open and outlive the trial in a warm worker: every child of this process and
    their descendants (hpt_cli.reaper). Only in a process that leads its own session, as an hpt
    worker does; elsewhere (a test process, `hpt` under a shell) the children may not be the
    trial's."""
    if os.getsid(0) == os.getpid():
        from hpt_cli import reaper

        reaper.end_children()


def _join(threads: list[threading.Thread]) -> None:
    # a grandchild that keeps the pipes open must not hang the worker
    for t in threads:
        t.join(timeout=_KILL_GRACE_S)


def _validation_end(payload: TrialPayload) -> str:
    """The end of the validation window right after the date range (data.validation long), as the
    built-ins split the data; "" without data."""
    if payload.data is None:
        return ""
    from datetime import date

    return payload.data.validation.add_to(date.fromisoformat(payload.date_range[1])).isoformat()


def _data_path(payload: TrialPayload) -> str | None:
    if payload.data is None:
        return None
    from hpt_cli.datasets import data_path

    return str(data_path(payload.data))
