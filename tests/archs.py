"""Architectures for tests, referenced as "tests.archs:<function>" (workers get the repo root
on PYTHONPATH). Each writes the pids it owns to $HPT_TEST_PIDS/, so tests can check that no
process outlives the run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def _note_pid(pid: int) -> None:
    folder = os.environ.get("HPT_TEST_PIDS")
    if folder:
        Path(folder, str(pid)).touch()


def noop(params, ctx):
    return {"val_mse": 0.0}


def fault(params, ctx):
    """params["kind"]: ok | raise | segv | hang | exit | flaky | sleep."""
    _note_pid(os.getpid())
    kind = params["kind"]
    if kind == "raise":
        raise ValueError(f"bad value for trial {ctx.trial_id}")
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if kind == "exit":
        os._exit(1)
    if kind == "hang":
        child = subprocess.Popen(["sleep", "60"])
        _note_pid(child.pid)
        time.sleep(60)
    if kind == "flaky":  # fails on its first attempt, succeeds on the next
        marker = ctx.artifact_dir / "attempted"
        if not marker.exists():
            marker.touch()
            raise RuntimeError("first attempt fails")
    if kind == "sleep":
        time.sleep(float(params.get("seconds", 0.5)))
    (ctx.artifact_dir / "model.bin").write_bytes(f"model of {ctx.trial_id}".encode())
    return {"val_mse": float(params.get("value", 1.0))}


def sleepy(params, ctx):
    """Sleeps params["seconds"], also spawning a child that sleeps, then reports its index."""
    _note_pid(os.getpid())
    child = subprocess.Popen(["sleep", "30"])
    _note_pid(child.pid)
    time.sleep(float(params["seconds"]))
    child.kill()
    child.wait()
    return {"val_mse": float(params["i"])}
