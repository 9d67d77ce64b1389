"""Jobs for tests/executors/test_worker_log.py: they write to their log through print()."""

from __future__ import annotations

import os
import sys


def chatty(payload):
    """Prints payload["lines"] lines to stdout and one to stderr, then returns payload["value"]."""
    for i in range(payload["lines"]):
        print(f"chatty line {i} " + "x" * 100)
    sys.stderr.write("chatty stderr\n")
    return {"value": payload["value"], "pid": os.getpid()}


def chatty_then_raise(payload):
    print("chatty before the error")
    raise ValueError("the job's own error")


def getpid(payload):
    print("getpid prints")
    return os.getpid()
