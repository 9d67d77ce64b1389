"""Job functions for the executor tests. Workers import this module as `tests.executors.jobs`.

Each takes one payload (usually a dict) and does one thing; files named in the payload are how a
job tells the test its pid or its child's pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def noop(payload):
    return None


def echo(payload):
    return payload


def square(payload):
    return payload * payload


def getpid(payload):
    return os.getpid()


def getenv(names):
    return {name: os.environ.get(name) for name in names}


def raise_value_error(payload):
    raise ValueError(f"bad lr {payload}\nsecond line")


def sleep(payload):
    """payload: {"seconds": s, "pid_file": optional path to write the worker pid to}."""
    if payload.get("pid_file"):
        Path(payload["pid_file"]).write_text(str(os.getpid()))
    time.sleep(payload["seconds"])
    return payload["seconds"]


def spawn_child_and_hang(payload):
    """Start `sleep 60`, write "<worker pid> <child pid>" to payload["pid_file"], then hang."""
    child = subprocess.Popen(["sleep", "60"])
    Path(payload["pid_file"]).write_text(f"{os.getpid()} {child.pid}")
    time.sleep(60)


def write_output(payload):
    """Write a line three ways: print(), os.write to fd 1 and 2, and a child process."""
    print("from print")
    os.write(1, b"from fd 1\n")
    os.write(2, b"from fd 2\n")
    subprocess.run([sys.executable, "-c", "print('from child')"], check=True)
    return "written"


def segfault(payload):
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(5)


def sigkill(payload):
    """What the kernel's OOM killer does to a process."""
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(5)


def exit_hard(code):
    os._exit(code)


def unpicklable_result(payload):
    return lambda: None


CALLS = 0


def count_calls(payload):
    """How many times this worker process has called this function: imports are cached."""
    global CALLS
    CALLS += 1
    return CALLS


def get_sys_path(payload):
    return list(sys.path)


_WARMED: list = []


def warm(payload):
    """A worker's warm-up: sleeps payload["seconds"], prints (which must not show), remembers it;
    payload["fail"]: raises instead."""
    print("warming up")
    if payload.get("fail"):
        raise RuntimeError("warm-up failed")
    time.sleep(payload.get("seconds", 0.0))
    _WARMED.append(os.getpid())


def warmed(payload):
    """What this worker's warm-up did before this job: the pids it recorded."""
    return list(_WARMED)
