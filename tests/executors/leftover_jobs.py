"""Jobs for tests/executors/test_leftover_processes.py: each leaves processes running when it
returns. Workers import this module as `tests.executors.leftover_jobs`.

Each writes the pids of what it left behind, one a line, to payload["pid_file"] before returning.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

LEFT: list[subprocess.Popen] = []  # Popen objects a job kept (not collected while it runs)


def _write_pids(payload: dict, pids: list[int]) -> list[int]:
    Path(payload["pid_file"]).write_text("".join(f"{pid}\n" for pid in pids))
    return pids


def leave_child(payload):
    """`sleep 300`, a child in the worker's process group."""
    child = subprocess.Popen(["sleep", "300"])
    LEFT.append(child)
    return _write_pids(payload, [child.pid])


def leave_setsid_child(payload):
    """`setsid sleep 300`: a child in a session of its own, out of the worker's process group."""
    child = subprocess.Popen(["setsid", "sleep", "300"])
    return _write_pids(payload, [child.pid])


def leave_child_of_a_thread(payload):
    """`sleep 300` started by a thread that has ended when the job returns."""
    pids: list[int] = []
    thread = threading.Thread(target=lambda: pids.append(subprocess.Popen(["sleep", "300"]).pid))
    thread.start()
    thread.join()
    return _write_pids(payload, pids)


def leave_daemon(payload):
    """A double-forked daemon: fork, setsid, fork again, the first child exits; the grandchild
    (an orphan in its own session) execs `sleep 300`."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:
        try:
            os.close(read_end)
            os.setsid()
            second = os.fork()
            if second == 0:
                os.write(write_end, f"{os.getpid()}\n".encode())
                os.close(write_end)
                os.execvp("sleep", ["sleep", "300"])
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        daemon = int(fh.readline())
    os.waitpid(first, 0)
    return _write_pids(payload, [daemon])


_POOL = None  # a pool kept for the later jobs of this worker, as a trial module may keep one


def kept_pool(payload):
    """Use a fork pool kept in a global: the pids of its workers, the same in every job."""
    import multiprocessing

    global _POOL
    if _POOL is None:
        _POOL = multiprocessing.get_context("fork").Pool(2)
    return sorted(set(_POOL.map(_pid, range(8), chunksize=1)))


def _pid(_):
    time.sleep(0.01)
    return os.getpid()


def forkserver_pool(payload):
    """A pool of the forkserver start method (the default on Linux from Python 3.14): its server
    process outlives the pool, for the next pool of this worker."""
    import multiprocessing

    with multiprocessing.get_context("forkserver").Pool(1) as pool:
        return pool.apply(os.getpid) != os.getpid()


def fork_pool_in_a_with_block(payload):
    """A fork pool used and closed by its `with` block, which ends the pool's workers with SIGTERM;
    then a forked Process ended by terminate(). Both must end, not hang."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        squares = pool.map(_square, range(6))
    child = context.Process(target=time.sleep, args=(300,))
    child.start()
    child.terminate()
    child.join(10)
    return squares, child.exitcode


def _square(x):
    return x * x

