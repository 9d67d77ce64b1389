"""DaskExecutor against a real Dask scheduler and two workers on 127.0.0.1 (separate processes).

The shared executor contract, the same rows as the local executor through the Runner, a worker
SIGKILLed in the middle of a trial, files that come back from a worker without the log's folder,
and clear errors for a missing scheduler or missing resources.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from hpt_cli.executors import Executor, JobResult, LocalExecutor
from hpt_cli.executors.dask import DaskExecutor, DaskUnavailable, worker_argv
from hpt_cli.runner import metric_columns
from hpt_cli.runner.loop import Runner
from hpt_cli.runner.run_id import run_id as make_run_id
from hpt_cli.search import make_searcher
from hpt_cli.spec.parse import parse_spec
from hpt_cli.storage import open_store
from hpt_cli.storage.results import read_rows
from tests.executors.dask_cluster import DaskCluster
from tests.executors.test_contract import (
    ExecutorContract,
    alive,
    job,
    read_pids,
    run_all,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """Scheduler + 2 workers (2 threads, CPU=2 and GPU=1 each) for the whole session."""
    with DaskCluster(tmp_path_factory.mktemp("dask"), workers=2, resources="CPU=2,GPU=1") as cluster:
        yield cluster


class TestDaskExecutorContract(ExecutorContract):
    @pytest.fixture(autouse=True)
    def _cluster(self, dask_cluster):
        self.address = dask_cluster.address

    def make_executor(self, workers: int) -> Executor:
        return DaskExecutor(self.address, slots=workers, resources_per_job={"CPU": 1})


# -- through the Runner --------------------------------------------------------------------------

def run_sweep(tmp_path: Path, body: dict, executor: Executor, workers: int):
    spec = parse_spec(json.dumps(body))
    rid = make_run_id(spec)
    store = open_store(str(tmp_path), rid)
    runner = Runner(spec, rid, make_searcher(spec), executor, store, metric_columns(spec), workers)
    result = runner.run()
    rows = read_rows((Path(result.uri) / "results.csv").read_text())
    return result, rows


RIDGE = {
    "name": "ridge-dask",
    "architecture": "ridge",
    "date-range": [["2015-01-01", "2015-03-01"], ["2015-03-01", "2015-05-01"]],
    "parameters": {"alpha": [0.01, 1.0, 100.0]},
    "metrics": ["val_mse", "val_mae"],
}


def test_same_rows_as_the_local_executor(dask_cluster, tmp_path):
    local, local_rows = run_sweep(tmp_path / "local", RIDGE, LocalExecutor(2), 2)
    dask, dask_rows = run_sweep(tmp_path / "dask", RIDGE, DaskExecutor(dask_cluster.address), 4)
    assert local.exit_code == dask.exit_code == 0
    assert len(local_rows) == len(dask_rows) == 6

    def table(rows):
        return {r["trial_id"]: (r["status"], r["alpha"], r["start"], r["val_mse"], r["val_mae"])
                for r in rows}

    assert table(dask_rows) == table(local_rows)
    assert all(r["status"] == "ok" and float(r["val_mse"]) > 0 for r in dask_rows)
    for row in dask_rows:  # the trial's own folder got its log and its model, from the worker
        folder = Path(dask.uri) / row["artifact_dir"]
        assert "[hpt] dask worker tcp://127.0.0.1:" in (folder / "log.txt").read_text()
        assert any(p.name != "log.txt" for p in folder.iterdir())


def test_a_worker_killed_mid_trial_still_gives_one_row_per_trial(tmp_path):
    with DaskCluster(tmp_path / "cluster", workers=2) as cluster:
        body = {
            "name": "killed",
            "architecture": "tests.executors.dask_cluster:sleepy",
            "date-range": [["2015-01-01", "2015-02-01"]],
            "parameters": {"seconds": 1.5, "value": [1, 2, 3, 4, 5, 6]},
            "trial": {"retries": 0, "timeout": "60s"},
        }
        killed = []

        class KillOne:  # an observer: SIGKILL the Dask worker under the first running trial
            def __getattr__(self, name):
                return lambda *args: None

            def tick(self, running):
                if killed:
                    return
                for pid_file in (tmp_path / "out").glob("*/trials/*/pid"):
                    if pid_file.read_text().strip():
                        trial_pid = int(pid_file.read_text())
                        worker_pid = _parent(trial_pid)
                        assert worker_pid in cluster.worker_pids()
                        cluster.kill_worker(worker_pid)
                        killed.append((trial_pid, worker_pid))
                        return

        spec = parse_spec(json.dumps(body))
        rid = make_run_id(spec)
        store = open_store(str(tmp_path / "out"), rid)
        executor = DaskExecutor(cluster.address, resources_per_job={"CPU": 1})
        runner = Runner(spec, rid, make_searcher(spec), executor, store, metric_columns(spec), 4,
                        observers=[KillOne()])
        started = time.monotonic()
        result = runner.run()
        assert killed, "no trial was seen running"
        assert wait_until(lambda: not alive(killed[0][0]))  # the trial process died with its worker
        assert len(cluster.worker_pids()) == 1
        rows = read_rows((Path(result.uri) / "results.csv").read_text())
        assert sorted(r["value"] for r in rows) == ["1", "2", "3", "4", "5", "6"]
        assert len({r["trial_id"] for r in rows}) == 6
        assert all(r["status"] == "ok" for r in rows), rows
        assert result.exit_code == 0
        assert time.monotonic() - started < 30


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


# -- Dask specifics ------------------------------------------------------------------------------

def test_files_come_back_when_the_log_folder_is_not_on_the_worker(dask_cluster, tmp_path):
    folder = tmp_path / "elsewhere" / "trial"  # absent, as on another machine
    with DaskExecutor(dask_cluster.address, slots=1) as ex:
        [r] = run_all(ex, [job("out", "write_output", log_path=str(folder / "log.txt"))])
    assert r.status == "ok"
    text = (folder / "log.txt").read_text()
    assert "from fd 2" in text and "from child" in text


def test_a_trial_process_killed_by_sigkill_says_out_of_memory_as_locally(dask_cluster, tmp_path):
    with DaskExecutor(dask_cluster.address, slots=1) as ex:
        [r] = run_all(ex, [job("oom", "sigkill", log_path=str(tmp_path / "log.txt"))])
    assert r.status == "crashed"
    assert r.error == "worker died with signal SIGKILL (out of memory? the kernel's OOM killer sends SIGKILL)"


def test_trial_env_and_default_slots(dask_cluster):
    with DaskExecutor(dask_cluster.address, env={"OMP_NUM_THREADS": "1"}) as ex:
        assert ex.free_slots() == 4  # 2 workers x 2 threads
        [r] = run_all(ex, [job("env", "getenv", ["OMP_NUM_THREADS"])])
    assert r.value == {"OMP_NUM_THREADS": "1"}
    with DaskExecutor(dask_cluster.address, resources_per_job={"CPU": 2}) as ex:
        assert ex.free_slots() == 2  # CPU=2 per worker, 2 per job


def test_a_gpu_job_gets_one_gpu_of_its_worker(dask_cluster):
    with DaskExecutor(dask_cluster.address, resources_per_job={"CPU": 1, "GPU": 1}) as ex:
        assert ex.free_slots() == 2  # GPU=1 per worker
        [r] = run_all(ex, [job("gpu", "getenv", ["CUDA_VISIBLE_DEVICES", "HPT_DEVICE"])])
    visible = (os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")
    assert r.value["CUDA_VISIBLE_DEVICES"] in visible and r.value["HPT_DEVICE"] == "cuda:0"


def test_missing_resources_and_scheduler_are_clear_errors(dask_cluster):
    ex = DaskExecutor(dask_cluster.address, resources_per_job={"GPU": 2}, connect_timeout=0.5)
    with pytest.raises(DaskUnavailable, match=r"no Dask worker .* offers .*GPU=2"):
        ex.start()
    ex = DaskExecutor("tcp://127.0.0.1:9", connect_timeout=0.5)
    with pytest.raises(DaskUnavailable, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        ex.start()


def test_cancel_kills_the_trial_process_on_the_worker(dask_cluster, tmp_path):
    ex = DaskExecutor(dask_cluster.address, slots=1)
    ex.start()
    pid_file = tmp_path / "pid"
    ex.submit(job("slow", "spawn_child_and_hang", {"pid_file": str(pid_file)}))
    pids = read_pids(pid_file)
    started = time.monotonic()
    [r] = ex.shutdown(cancel=True)
    assert isinstance(r, JobResult) and r.status == "cancelled"
    assert time.monotonic() - started < 5
    assert wait_until(lambda: not any(alive(p) for p in pids))
    assert ex.shutdown() == []


def test_shutdown_without_cancel_returns_each_result_once(dask_cluster):
    ex = DaskExecutor(dask_cluster.address, slots=2)
    ex.start()
    ex.submit(job("a", "sleep", {"seconds": 0.3}))
    ex.submit(job("b", "square", 4))
    assert sorted(r.key for r in ex.shutdown(cancel=False)) == ["a", "b"]


def test_dask_giving_up_on_a_task_is_a_crashed_result(tmp_path):
    env = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}  # no second worker for it
    with DaskCluster(tmp_path / "cluster", workers=1, env=env) as cluster:
        ex = DaskExecutor(cluster.address, slots=1)
        ex.start()
        pid_file = tmp_path / "pid"
        ex.submit(job("doomed", "sleep", {"seconds": 30, "pid_file": str(pid_file)}, timeout=60))
        [trial_pid] = read_pids(pid_file)
        cluster.kill_worker(_parent(trial_pid))
        [r] = ex.wait(timeout=10)
        assert r.status == "crashed" and r.error.startswith("KilledWorker: ")
        import socket

        assert ex.devices[r.worker] == f"cpu@{socket.gethostname()}"  # where it ran, not an earlier job's
        assert wait_until(lambda: not alive(trial_pid))
        assert ex.shutdown() == []


def test_worker_argv_gives_the_machine_s_cpus_and_gpus():
    from hpt_cli.devices.inventory import fake

    argv, env = worker_argv("tcp://10.0.0.1:8786", name="box", inventory=fake("2x24G", cpus=8))
    assert argv[1:] == ["worker", "tcp://10.0.0.1:8786", "--nthreads", "8",
                        "--resources", "CPU=8,GPU=2", "--name", "box"]
    assert env == {"CUDA_VISIBLE_DEVICES": "0,1"}
    argv, _ = worker_argv("tcp://10.0.0.1:8786", inventory=fake("2x24G", cpus=8))
    import socket

    assert argv[-2:] == ["--name", f"{socket.gethostname()}-{os.getpid()}"]  # the pid execvpe keeps


def test_hpt_run_with_the_dask_executor_from_the_command_line(dask_cluster, tmp_path):
    import subprocess

    import pandas as pd

    from tests.helpers import HPT, subprocess_env, write_spec

    spec = write_spec(tmp_path, name="cli-dask", architecture="ridge", parameters={"alpha": [0.1, 1.0, 10.0]},
                      **{"date-range": [["2015-01-01", "2015-04-01"], ["2015-04-01", "2015-07-01"]]})
    local = subprocess.run([HPT, "run", str(spec), "-o", str(tmp_path / "local"), "-q"], env=subprocess_env(),
                           capture_output=True, text=True, timeout=120)
    remote = subprocess.run([HPT, "run", str(spec), "-o", str(tmp_path / "dask"), "--executor", "dask",
                             "--scheduler", dask_cluster.address], env=subprocess_env(), capture_output=True,
                            text=True, timeout=120)
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    assert f"dask: {dask_cluster.address}" in remote.stderr
    frames = [pd.read_csv(next((tmp_path / kind).glob("*/results.csv"))).sort_values("trial_id")
              for kind in ("local", "dask")]
    assert list(frames[0]["trial_id"]) == list(frames[1]["trial_id"])
    assert list(frames[0]["val_mse"]) == list(frames[1]["val_mse"])
    import socket

    assert set(frames[1]["device"]) == {f"cpu@{socket.gethostname()}"}  # where each trial ran, as locally


def test_hpt_run_refuses_a_cluster_whose_workers_cannot_import_the_spec_s_module(dask_cluster, tmp_path):
    import subprocess

    from tests.helpers import HPT, subprocess_env

    (tmp_path / "only_here.py").write_text("def train(params, ctx):\n    return {'val_mse': 1.0}\n")
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"name": "only-here", "architecture": "only_here:train",
                                "date-range": [["2015-01-01", "2015-03-01"]], "parameters": {"alpha": 1.0}}))
    done = subprocess.run([HPT, "run", str(spec), "-o", str(tmp_path / "out"), "--executor", "dask",
                           "--scheduler", dask_cluster.address], env=subprocess_env(), capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)  # the runner finds only_here.py; the workers do not
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: Dask workers at {dask_cluster.address} cannot run hpt trials: tcp://")
    assert "cannot import only_here (" in last and last.endswith("or install it there")
    assert not list((tmp_path / "out").glob("*/results.csv"))  # refused before any trial


def test_a_relative_data_path_is_the_runner_s_folder_not_the_worker_s(dask_cluster, tmp_path, monkeypatch):
    import pandas as pd

    from hpt_cli.datasets import bundled_path

    frame = pd.read_csv(bundled_path())
    (tmp_path / "mine").mkdir()
    frame[frame["date"].between("2014-06-01", "2015-06-01")].to_csv(tmp_path / "mine" / "rides.csv", index=False)
    monkeypatch.chdir(tmp_path)  # the workers run in the repository root, where no mine/rides.csv is
    body = {**RIDGE, "name": "relative-data", "data": {"path": "mine/rides.csv"},
            "date-range": [["2015-01-01", "2015-03-01"]], "parameters": {"alpha": [0.1, 1.0]}}
    result, rows = run_sweep(tmp_path / "out", body, DaskExecutor(dask_cluster.address), 2)
    assert [(r["status"], r["error"]) for r in rows] == [("ok", ""), ("ok", "")]
    assert result.run_id == make_run_id(parse_spec(json.dumps(body)))  # the spec as written decides the id
    assert json.loads((Path(result.uri) / "spec.json").read_text())["data"]["path"] == "mine/rides.csv"


def test_a_trial_whose_module_the_worker_cannot_import_names_the_worker(dask_cluster, tmp_path, monkeypatch):
    import socket

    (tmp_path / "module_only_on_the_runner.py").write_text("def train(params, ctx):\n    return {'val_mse': 1.0}\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the runner finds it; the workers (repository root) do not
    body = {"name": "elsewhere", "architecture": "module_only_on_the_runner:train",
            "date-range": [["2015-01-01", "2015-03-01"]], "parameters": {"alpha": 1.0}, "trial": {"retries": 0}}
    result, [row] = run_sweep(tmp_path, body, DaskExecutor(dask_cluster.address), 1)
    assert row["status"] == "failed" and result.exit_code == 1
    assert row["error"].startswith("ArchitectureError: cannot import 'module_only_on_the_runner' for architecture "
                                   "'module_only_on_the_runner:train' on the Dask worker tcp://127.0.0.1:")
    assert f"({socket.gethostname()}): no module named 'module_only_on_the_runner' on its sys.path or in its " \
           "working folder " in row["error"]
    assert row["error"].endswith("put the folder that holds it on that worker's PYTHONPATH (or start the worker "
                                 "in it), or install it there")
    assert "run hpt from the folder" not in (Path(result.uri) / row["artifact_dir"] / "log.txt").read_text()


# -- review findings 3, 5, 6: staging, --log-limit, the device of every result ---------------------

def _shipped(monkeypatch) -> list[tuple[str, bytes]]:
    """The files the workers ship back (DaskExecutor's `_unpack`, which still writes them)."""
    from hpt_cli.executors import dask as dask_module

    shipped: list[tuple[str, bytes]] = []
    unpack = dask_module._unpack
    monkeypatch.setattr(dask_module, "_unpack", lambda files, log_path: (shipped.extend(files),
                                                                       unpack(files, log_path)))
    return shipped


def test_a_folder_a_killed_worker_left_staged_is_staged_again_and_its_files_come_back(dask_cluster, tmp_path,
                                                                                     monkeypatch):
    from hpt_cli.executors import _dask_task
    from hpt_cli.executors import dask as dask_module

    log = tmp_path / "run" / "trials" / "t1" / "log.txt"
    _dask_task._stage(str(log), "hpt-t1-killed")  # what a worker SIGKILLed mid-trial leaves on its box
    log.write_text("the killed attempt\n")
    monkeypatch.setattr(dask_module, "_mark", lambda log_path, key: None)  # the runner is on another machine
    shipped = _shipped(monkeypatch)
    with DaskExecutor(dask_cluster.address, slots=1) as ex:
        [r] = run_all(ex, [job("t1", "write_output", log_path=str(log))])
    assert r.status == "ok"
    assert [name for name, _ in shipped] == ["log.txt"]  # not kept on the worker as a "shared" folder
    assert "from fd 2" in log.read_text() and "the killed attempt" not in log.read_text()


def test_the_runner_s_own_folder_is_written_in_place_and_keeps_no_marker(dask_cluster, tmp_path, monkeypatch):
    shipped = _shipped(monkeypatch)
    with DaskExecutor(dask_cluster.address, slots=1) as ex:
        [r] = run_all(ex, [job("here", "write_output", log_path=str(tmp_path / "log.txt"))])
    assert r.status == "ok" and shipped == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt"]


def test_a_log_shipped_from_a_worker_is_cut_to_the_run_s_log_limit_there(dask_cluster, tmp_path, monkeypatch):
    from hpt_cli.executors.base import Job

    shipped = _shipped(monkeypatch)
    log = tmp_path / "elsewhere" / "log.txt"  # absent, as on another machine
    limit = 64 * 1024
    with DaskExecutor(dask_cluster.address, slots=1, env={"HPT_LOG_LIMIT": str(limit)}) as ex:
        [r, e] = run_all(ex, [Job("chatty", "tests.executors.dask_cluster:chatty", {"lines": 20_000},
                                  log_path=str(log)),
                              job("env", "getenv", ["HPT_LOG_LIMIT"])])
    assert r.status == "ok" and r.value == 20_000  # 2 MB written on the worker
    [(name, data)] = shipped
    assert name == "log.txt" and len(data) <= limit + 200
    assert b" bytes of this log left out here (" in data and data.rstrip().endswith(b"00019999 " + b"x" * 90)
    assert e.value == {"HPT_LOG_LIMIT": None}  # for the worker's task, not in the trial's environment


def test_hpt_run_sends_its_log_limit_to_the_dask_workers(dask_cluster):
    from hpt_cli.runner import RunOptions, make_executor

    spec = parse_spec(json.dumps(RIDGE))
    executor, *_ = make_executor(spec, RunOptions(executor="dask", scheduler=dask_cluster.address,
                                                  log_limit=12345), 1)
    executor.shutdown()
    assert executor.env["HPT_LOG_LIMIT"] == "12345"
    executor, *_ = make_executor(spec, RunOptions(executor="dask", scheduler=dask_cluster.address,
                                                  log_limit=None), 1)
    executor.shutdown()
    assert "HPT_LOG_LIMIT" not in executor.env


def test_a_backstop_timeout_names_where_its_task_last_started(dask_cluster, tmp_path, monkeypatch):
    import socket

    from hpt_cli.executors import dask as dask_module

    ex = DaskExecutor(dask_cluster.address, slots=1, resources_per_job={"CPU": 1, "GPU": 1})
    ex.start()
    ex.devices["w0"] = "gpu9@an-earlier-job"
    pid_file = tmp_path / "pid"
    ex.submit(job("slow", "sleep", {"seconds": 60, "pid_file": str(pid_file)}, timeout=120))
    read_pids(pid_file)
    monkeypatch.setattr(dask_module, "_BACKSTOP_S", -120.0)  # the client-side deadline: the task's start
    [r] = ex.wait(timeout=30)  # a result the executor makes itself, not one the worker sent
    assert r.status == "timeout"
    gpu, _, host = ex.devices[r.worker].partition("@")
    assert gpu.startswith("gpu") and gpu != "gpu9" and host == socket.gethostname()
    assert ex.shutdown() == []


# -- a trial's device environment, as a local slot's (finding 5) ----------------------------------

DEVICE_VARS = ["CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "HPT_DEVICE", "HPT_GPU_MEMORY_MIB"]
MIXED_GPUS = {"HPT_FAKE_GPUS": "A100:40GiB,H100:80GiB", "CUDA_VISIBLE_DEVICES": "1,0"}  # the 80 GiB one first


@pytest.fixture(scope="module")
def hpt_worker_cluster(tmp_path_factory):
    """A scheduler and one `hpt worker` on two fake GPUs of different sizes, the larger (nvidia-smi's 1)
    listed first by the user's CUDA_VISIBLE_DEVICES."""
    from tests.helpers import HPT

    with DaskCluster(tmp_path_factory.mktemp("dask-gpus"), workers=0) as cluster:
        cluster.add_worker("hpt-worker", [HPT, "worker", cluster.address, "--name", "gpus"], MIXED_GPUS)
        cluster.wait_for_workers(1)
        yield cluster


def test_hpt_worker_and_its_gpu_trials_number_gpus_as_nvidia_smi_does(hpt_worker_cluster):
    from distributed import Client

    from tests.executors.jobs import getenv

    with Client(hpt_worker_cluster.address, timeout=10, set_as_default=False) as client:
        [own] = client.run(getenv, ["CUDA_DEVICE_ORDER", "CUDA_VISIBLE_DEVICES"]).values()
    assert own == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1,0"}  # the worker's environment
    with DaskExecutor(hpt_worker_cluster.address, resources_per_job={"CPU": 1, "GPU": 1}) as ex:
        [r] = run_all(ex, [job("whole", "getenv", DEVICE_VARS)])
    assert r.value == {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID", "HPT_DEVICE": "cuda:0",
                       "HPT_GPU_MEMORY_MIB": None}  # a whole GPU has no cap, as locally


def test_a_share_of_a_gpu_is_capped_at_that_share_of_its_gpu_s_memory(hpt_worker_cluster):
    with DaskExecutor(hpt_worker_cluster.address, resources_per_job={"CPU": 1, "GPU": 0.25}) as ex:
        [r] = run_all(ex, [job("quarter", "getenv", DEVICE_VARS)])
    assert r.value == {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID", "HPT_DEVICE": "cuda:0",
                       "HPT_GPU_MEMORY_MIB": "20480"}  # 80 GiB // 4, the 40 GiB GPU would give 10240
    given = {"HPT_GPU_MEMORY_MIB": "6144"}  # gpu_memory_per_trial, sent with the task: it wins, as locally
    with DaskExecutor(hpt_worker_cluster.address, resources_per_job={"CPU": 1, "GPU": 0.5}, env=given) as ex:
        [r] = run_all(ex, [job("given", "getenv", DEVICE_VARS)])
    assert r.value["HPT_GPU_MEMORY_MIB"] == "6144" and r.value["CUDA_VISIBLE_DEVICES"] == "1"


def test_a_cpu_trial_on_a_gpu_worker_sees_no_gpu(hpt_worker_cluster):
    with DaskExecutor(hpt_worker_cluster.address, resources_per_job={"CPU": 1}) as ex:
        [r] = run_all(ex, [job("cpu", "getenv", DEVICE_VARS)])
    assert r.value["CUDA_VISIBLE_DEVICES"] == "" and r.value["HPT_DEVICE"] == "cpu"
    assert r.value["HPT_GPU_MEMORY_MIB"] is None


def test_a_share_of_a_gpu_the_worker_cannot_measure_has_no_cap(dask_cluster):
    # `dask worker --resources GPU=1` on a box without nvidia-smi (or HPT_FAKE_GPUS): the GPU's memory is unknown
    with DaskExecutor(dask_cluster.address, resources_per_job={"CPU": 1, "GPU": 0.5}) as ex:
        [r] = run_all(ex, [job("half", "getenv", DEVICE_VARS)])
    assert r.value["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" and r.value["HPT_DEVICE"] == "cuda:0"
    assert r.value["HPT_GPU_MEMORY_MIB"] is None


def test_hpt_worker_print_sets_the_pci_bus_order_with_the_gpus(monkeypatch):
    from click.testing import CliRunner

    from hpt_cli.cli import cli

    out = CliRunner().invoke(cli, ["worker", "tcp://10.0.0.1:8786", "--name", "box", "--print"],
                             env={"HPT_FAKE_GPUS": "2x24G", "CUDA_VISIBLE_DEVICES": None})
    assert out.exit_code == 0, out.output
    assert out.output.startswith("CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=0,1 ")
    out = CliRunner().invoke(cli, ["worker", "tcp://10.0.0.1:8786", "--print"], env={"HPT_FAKE_GPUS": "none"})
    assert "CUDA_" not in out.output  # no GPU: nothing to number
