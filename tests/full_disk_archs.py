"""Architectures for the full-disk tests, referenced as "tests.full_disk_archs:<function>"."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path


def _note_pid() -> None:
    folder = os.environ.get("HPT_TEST_PIDS")
    if folder:
        Path(folder, str(os.getpid())).touch()


def chatty(params, ctx):
    """Prints a lot (the trial's log), writes a small artifact, reports params["value"]."""
    _note_pid()
    for i in range(int(params.get("lines", 50))):
        print(f"epoch {i}: " + "x" * 100)
    (ctx.artifact_dir / "model.bin").write_bytes(b"m")
    return {"val_mse": float(params["value"])}


def disk_full_at(params, ctx):
    """Fails as a trial does when its disk is full, for params["value"] == params["full_at"] while
    the file named by $HPT_TEST_DISK_FULL exists (delete it to "free space")."""
    _note_pid()
    marker = os.environ.get("HPT_TEST_DISK_FULL")
    if params["value"] == params["full_at"] and marker and Path(marker).exists():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    time.sleep(float(params.get("seconds", 0)))
    return {"val_mse": float(params["value"])}
