"""Command-template trials: run argv without a shell, collect metrics as JSON.

Each template item is formatted with `str.format(**params, trial_id=..., artifact_dir=..., start=...,
end=..., seed=..., epochs=..., device=..., data_path=...)` and becomes exactly one argument, so a
parameter value never reaches a shell. The child gets the same facts as HPT_* environment
variables. It reports metrics as a JSON object written to $HPT_METRICS_FILE, or as the last line
of stdout that is a JSON object. The child stays in the worker's process group, so the executor's
hard timeout kills it along with the worker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpt_cli.trialrun import TrialPayload

METRICS_FILE = "metrics.json"
NO_METRICS = ("command printed no metrics: print a JSON object as the last line of stdout, "
              "or write one to $HPT_METRICS_FILE")
_KILL_GRACE_S = 5.0

__all__ = ["build_argv", "build_env", "facts", "run_command"]


def facts(payload: TrialPayload) -> dict[str, Any]:
    """The values a template may name besides the parameters."""
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


def build_argv(payload: TrialPayload) -> list[str]:
    """One argument per template item; raise ValueError naming a bad placeholder."""
    if not payload.command:
        raise ValueError("a command trial needs a non-empty \"command\" template")
    values = {**payload.params, **facts(payload)}
    argv = []
    for item in payload.command:
        try:
            argv.append(item.format(**values))
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
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
    if payload.epochs is not None:
        env["HPT_EPOCHS"] = str(payload.epochs)
    else:
        env.pop("HPT_EPOCHS", None)
    if f["data_path"]:
        env["HPT_DATA_PATH"] = f["data_path"]
    else:
        env.pop("HPT_DATA_PATH", None)
    for name, value in payload.params.items():
        env[param_env_name(name)] = value if isinstance(value, str) else json.dumps(value)
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
        what = f"code {code}" if code > 0 else f"signal {-code}"
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
    """Kill the processes a command left behind (e.g. `sleep 30 &`), which would hold its pipes
    open and outlive the trial in a warm worker. Only where this process leads its own process
    group, as an hpt worker does: then every other member of the group descends from it. (Run
    elsewhere, e.g. in a test process, the group may hold the shell that started it: do nothing.)
    """
    me, group = os.getpid(), os.getpgrp()
    if group != me or not os.path.isdir("/proc"):
        return
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:  # fields after "(comm)": state, ppid, pgrp, ...
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to kill


def _join(threads: list[threading.Thread]) -> None:
    # a grandchild that keeps the pipes open must not hang the worker
    for t in threads:
        t.join(timeout=_KILL_GRACE_S)


def _data_path(payload: TrialPayload) -> str | None:
    if payload.data is None:
        return None
    from hpt_cli.datasets import data_path

    return str(data_path(payload.data))
