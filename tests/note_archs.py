"""Trial functions for tests/test_trial_log_notes.py, referenced as "tests.note_archs:<function>":
trials that end without a traceback of their own, and trials that return or report metrics of
every kind."""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np


def dies(params, ctx):
    """params["kind"]: exit7 | sigkill | hang | nan | raise | ok | flaky."""
    kind = params["kind"]
    if kind == "exit7":
        sys.stdout.write("half a line")  # no newline: hpt's note still starts a line of its own
        sys.stdout.flush()
        os._exit(7)
    if kind == "sigkill":  # what the kernel's OOM killer does
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "hang":
        time.sleep(60)
    if kind == "nan":
        return {"val_mse": float("nan")}
    if kind == "raise":
        raise ValueError("bad")
    if kind == "flaky":  # fails on its first attempt, succeeds on the next
        marker = ctx.artifact_dir / "attempted"
        if not marker.exists():
            marker.touch()
            raise RuntimeError("first attempt fails")
    print(f"trained {kind}")
    return {"val_mse": 1.0}


def metrics(params, ctx):
    """params["kind"]: what the trial returns or reports."""
    kind = params["kind"]
    if kind == "kept":
        ctx.report(epoch=0, loss=np.float32(0.5), note="warming up", diverged=False)
        return {"val_mse": 0.5, "val_mae": "n/a", "note": "hello", "converged": np.bool_(True),
                "n": np.int64(3), "one": np.array([2.5])}
    if kind == "array":
        return {"val_mse": 0.5, "pred": np.array([1.0, 2.0])}
    if kind == "list":
        return {"val_mse": 0.5, "history": [1.0, 2.0]}
    if kind == "report-list":
        ctx.report(epoch=0, loss=[1.0, 2.0])
    if kind == "string-objective":
        return {"val_mse": "bad"}
    if kind == "bool-objective":
        return {"val_mse": True}
    return {"val_mse": 1.0}


def chatty(params, ctx):
    """params["kind"]: ok | raise. Writes ~200 KB of numbered lines (from Python, from fd 1 as C
    code would, and from a child process), then says it is done or raises."""
    import subprocess

    for i in range(4000):
        print(f"step {i:05d} loss {1.0 / (i + 1):.6f} " + "x" * 20)
        if i == 2000:
            sys.stdout.flush()
            os.write(1, b"from fd 1\n")
            subprocess.run(["echo", "from a child process"], check=True)
    sys.stdout.flush()
    if params["kind"] == "raise":
        raise ValueError("diverged at the end")
    print("done")
    return {"val_mse": 1.0}
