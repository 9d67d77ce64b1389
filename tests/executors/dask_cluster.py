"""A real Dask cluster on 127.0.0.1 for the tests: `dask scheduler` and `dask worker` processes.

    with DaskCluster(workers=2, folder=tmp) as cluster:
        DaskExecutor(cluster.address, ...)
        cluster.kill_worker(pid)
        cluster.kill_scheduler(); cluster.start_scheduler()  # a restart on the same port

Workers run without a nanny (killing a worker's pid removes it for good) with `--nthreads 2
--resources CPU=2`, in the repository root with it on PYTHONPATH, so they import `tests.*`. Each
process leads its own session; `stop()` kills every group, so nothing is left behind. Should the
test process itself be killed, the scheduler exits after `--idle-timeout` and the workers
`--death-timeout` after it.

Also holds the trial functions the Dask tests run through the Runner (workers import them from
here as `tests.executors.dask_cluster:<name>`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parents[2]
DASK = str(Path(sys.executable).with_name("dask"))
START_TIMEOUT_S = 30.0


class DaskCluster:
    def __init__(self, folder: Path, workers: int = 2, nthreads: int = 2, resources: str = "CPU=2",
                 env: dict[str, str] | None = None):
        self.extra_env = dict(env or {})
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.n_workers = workers
        self.nthreads = nthreads
        self.resources = resources
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.address = ""

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(self.folder / f"{name}.log", "ab") as log:
            return subprocess.Popen(argv, cwd=ROOT, env={**self.env(), **(env or {})}, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> None:
        end = time.monotonic() + START_TIMEOUT_S
        self.start_scheduler()
        for i in range(self.n_workers):
            self.add_worker(f"dw{i}")
        self.wait_for_workers(self.n_workers, end)

    def start_scheduler(self) -> None:
        """Start the scheduler: on a free port, or on the one it had (a restart)."""
        scheduler_file = self.folder / "scheduler.json"
        scheduler_file.unlink(missing_ok=True)
        port = self.address.rpartition(":")[2] or "0"
        self.scheduler = self._spawn("scheduler", [
            DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard",
            "--scheduler-file", str(scheduler_file), "--idle-timeout", "300",
        ])
        end = time.monotonic() + START_TIMEOUT_S
        while not (scheduler_file.exists() and scheduler_file.read_text().strip()):
            self._check_alive(self.scheduler, "scheduler", end)
            time.sleep(0.05)
        self.address = json.loads(scheduler_file.read_text())["address"]

    def kill_scheduler(self) -> None:
        """SIGKILL the scheduler's process group (its workers then leave or wait for it)."""
        if self.scheduler is not None:
            _kill_group(self.scheduler)
            self.scheduler = None

    def add_worker(self, name: str, argv: list[str] | None = None, env: dict[str, str] | None = None
                   ) -> subprocess.Popen:
        """A `dask worker` as the cluster's others, or the command `argv` (e.g. `hpt worker`)."""
        proc = self._spawn(name, argv or [
            DASK, "worker", self.address, "--host", "127.0.0.1", "--no-dashboard", "--no-nanny",
            "--nthreads", str(self.nthreads), "--resources", self.resources, "--name", name,
            "--death-timeout", "60",
        ], env)
        self.workers.append(proc)
        return proc

    def worker_count(self) -> int:
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as client:
            return len(client.scheduler_info(n_workers=-1)["workers"])

    def wait_for_workers(self, count: int, end: float | None = None) -> None:
        from distributed import Client

        end = end or time.monotonic() + START_TIMEOUT_S
        with Client(self.address, timeout=10, set_as_default=False) as client:
            while len(client.scheduler_info(n_workers=-1)["workers"]) < count:
                self._check_alive(self.scheduler, "scheduler", end)
                time.sleep(0.05)

    def _check_alive(self, proc: subprocess.Popen, name: str, end: float) -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"dask {name} exited with {proc.returncode}: {self.logs()}")
        if time.monotonic() > end:
            raise RuntimeError(f"the Dask cluster did not start in {START_TIMEOUT_S} s: {self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.folder.glob("*.log")))

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.workers if p.poll() is None]

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one worker process (its trial processes then kill themselves)."""
        os.kill(pid, signal.SIGKILL)
        for proc in self.workers:
            if proc.pid == pid:
                proc.wait(timeout=10)

    def stop(self) -> None:
        procs = [*self.workers, *([self.scheduler] if self.scheduler else [])]
        for proc in procs:  # workers first, then the scheduler: a clean close, quickly
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + 5
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the process, or what it left in its group
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait(timeout=10)
        self.workers = []
        self.scheduler = None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


# -- trial functions for Runner tests (architecture "tests.executors.dask_cluster:<name>") ---------

def sleepy(params: dict, ctx) -> dict[str, float]:
    """Write this process's pid to <artifact_dir>/pid, sleep params["seconds"], return metrics."""
    (ctx.artifact_dir / "pid").write_text(str(os.getpid()))
    time.sleep(float(params["seconds"]))
    return {"val_mse": float(params["value"])}


def chatty(payload: dict) -> int:
    """A job (not a trial) that prints `lines` numbered lines of 100 bytes to its log."""
    line = "x" * 90
    for i in range(int(payload["lines"])):
        print(f"{i:08d} {line}")
    return int(payload["lines"])
